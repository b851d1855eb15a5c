"""HTTP controllers of the dsl-store, one per resource (contract 4.3)."""

from drift_dsl_store.controllers.nodes import NodeDefinitionController
from drift_dsl_store.controllers.workflows import WorkflowDefinitionController

__all__ = ["NodeDefinitionController", "WorkflowDefinitionController"]
