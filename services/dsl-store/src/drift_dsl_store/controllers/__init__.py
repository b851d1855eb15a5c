"""HTTP controllers of the dsl-store, one per resource (contract 4.3, enums and run contexts)."""

from drift_dsl_store.controllers.nodes import NodeDefinitionController
from drift_dsl_store.controllers.tenant_data import EnumController, RunContextController
from drift_dsl_store.controllers.workflows import WorkflowDefinitionController

__all__ = ["EnumController", "NodeDefinitionController", "RunContextController", "WorkflowDefinitionController"]
