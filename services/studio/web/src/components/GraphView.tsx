import { memo, useCallback, useMemo, useState } from "react";
import {
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  type Connection,
  type Edge,
  type Node,
  type NodeChange,
  type NodeProps,
} from "@xyflow/react";
import { edgesOf, layout, typeOf, type FlowEdge, type NodeDefinition, type NodeRunState, type WorkflowDefinition } from "../model";

export const TYPE_ICONS: Record<string, string> = {
  HTTP: "⇄",
  SCRIPT: "ƒ",
  BRANCH: "◇",
  INSTRUCTION: "✎",
  WAIT: "◴",
  CHILD: "⊞",
  PARALLEL: "∥",
  MAP: "⋔",
  SUCCESS: "✔",
  FAILURE: "✖",
  UNKNOWN: "?",
};

interface StepData extends Record<string, unknown> {
  name: string;
  type: string;
  start: boolean;
  failure: boolean;
  run?: NodeRunState;
  errors: number;
  title?: string;
}

const Step = memo(function Step({ data, selected }: NodeProps<Node<StepData>>) {
  const status = data.run?.status;
  return (
    <div
      className={`step type-${data.type} ${selected ? "selected" : ""} ${status ? `status-${status}` : ""} ${data.errors ? "has-errors" : ""}`}
      data-instance={data.name}
      title={data.title}
    >
      <Handle type="target" position={Position.Top} />
      <div className="step-head">
        <span className="step-icon" aria-hidden>
          {TYPE_ICONS[data.type] ?? "?"}
        </span>
        <span className="step-type">{data.type}</span>
        {data.start && <span className="badge start">start</span>}
        {data.failure && <span className="badge failure">on failure</span>}
      </div>
      <div className="step-name">{data.name}</div>
      {status && (
        <div className="step-status">
          {status}
          {data.run && data.run.visits > 1 ? ` ×${data.run.visits}` : ""}
        </div>
      )}
      {data.run?.summary && <div className="step-items">{data.run.summary}</div>}
      {data.errors > 0 && <div className="step-errors">{data.errors} error{data.errors > 1 ? "s" : ""}</div>}
      <Handle type="source" position={Position.Bottom} />
    </div>
  );
});

const nodeTypes = { step: Step };

interface Props {
  definition: WorkflowDefinition;
  library: Record<string, NodeDefinition>;
  selected?: string | null;
  selectedEdge?: string | null;
  runStates?: Record<string, NodeRunState>;
  path?: Set<string>;
  errorsByInstance?: Record<string, number>;
  editable?: boolean;
  onSelect?: (instance: string | null) => void;
  onSelectEdge?: (edge: FlowEdge | null) => void;
  onConnect?: (source: string, target: string) => void;
  onDeleteEdges?: (edges: FlowEdge[]) => void;
}

export function GraphView(props: Props) {
  const { definition, library, runStates, path, errorsByInstance, editable } = props;
  const states = definition.states ?? {};
  const count = Object.keys(states).length;
  const flowEdges = useMemo(() => edgesOf(definition, library, count <= 40), [definition, library, count]);
  // Laid out again only when the graph's shape changes, not when a field inside a node does.
  const shape = useMemo(
    () =>
      `${Object.keys(states).join(",")}|${flowEdges
        .filter((e) => e.kind !== "failure")
        .map((e) => `${e.source}>${e.target}`)
        .join(",")}`,
    [states, flowEdges],
  );
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const positions = useMemo(() => layout(definition, flowEdges), [shape]);

  // The sizes React Flow measured, handed back with every node: a node object without them counts as not yet
  // measured and is hidden until measured again, and a run's page makes new node objects on every update.
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const onNodesChange = useCallback((changes: NodeChange<Node<StepData>>[]) => {
    const sizes: Record<string, { width: number; height: number }> = {};
    for (const change of changes) if (change.type === "dimensions" && change.dimensions) sizes[change.id] = change.dimensions;
    if (Object.keys(sizes).length > 0) setMeasured((known) => ({ ...known, ...sizes }));
  }, []);

  const nodes: Node<StepData>[] = useMemo(
    () =>
      Object.entries(states).map(([name, state]) => ({
        id: name,
        type: "step",
        position: positions[name] ?? { x: 0, y: 0 },
        measured: measured[name],
        selected: props.selected === name,
        data: {
          name,
          type: typeOf(state, library),
          start: definition.startNode === name,
          failure: definition.defaultFailureNode === name,
          run: runStates?.[name],
          errors: errorsByInstance?.[name] ?? 0,
          title: runStates?.[name]?.lastError ?? undefined,
        },
      })),
    [states, positions, measured, props.selected, library, definition.startNode, definition.defaultFailureNode, runStates, errorsByInstance],
  );

  const edges: Edge[] = useMemo(
    () =>
      flowEdges.map((edge) => {
        const taken = path?.has(`${edge.source}->${edge.target}`) ?? false;
        return {
          id: edge.id,
          source: edge.source,
          target: edge.target,
          label: edge.label,
          selected: props.selectedEdge === edge.id,
          className: `edge-${edge.kind} ${taken ? "taken" : ""}`,
          animated: taken,
          markerEnd: { type: MarkerType.ArrowClosed },
          style: edge.kind === "failure" ? { strokeDasharray: "6 4", stroke: "#b3261e" } : taken ? { stroke: "#1a7f37", strokeWidth: 2.5 } : undefined,
          data: { edge },
        };
      }),
    [flowEdges, path, props.selectedEdge],
  );

  const byId = useMemo(() => new Map(flowEdges.map((e) => [e.id, e])), [flowEdges]);

  return (
    <div className="graph" aria-label="workflow graph">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        onNodesChange={onNodesChange}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ maxZoom: 1 }}
        minZoom={0.05}
        nodesDraggable={false}
        nodesConnectable={!!editable}
        edgesFocusable
        deleteKeyCode={editable ? ["Delete", "Backspace"] : null}
        onNodeClick={(_, node) => props.onSelect?.(node.id)}
        onEdgeClick={(_, edge) => props.onSelectEdge?.(byId.get(edge.id) ?? null)}
        onPaneClick={() => {
          props.onSelect?.(null);
          props.onSelectEdge?.(null);
        }}
        onConnect={(connection: Connection) => {
          if (connection.source && connection.target) props.onConnect?.(connection.source, connection.target);
        }}
        onEdgesDelete={(deleted) => props.onDeleteEdges?.(deleted.map((e) => byId.get(e.id)).filter((e): e is FlowEdge => !!e))}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
