// The case page's diagram: the pathway version the case runs on, drawn with bpmn-js's
// NavigatedViewer, with the case's position on it as markers and badges (completed steps,
// ready steps, the path taken, due dates on waiting timers, also on the collapsed
// subprocesses holding them), and the "Why this step" panel a click on an element opens (its
// state on this case, its rationale and evidence). Also what the other parts read from the
// diagram: an element's properties, documentation and form fields, a deadline's timers, and
// whether a subprocess is under way on this case.
import { ApiError, clinicTime, el } from './api.js';
import { current } from './case-state.js';
import { createViewer } from '../viewer.js';

let viewer = null;
let diagramOf = null; // "pathway/version" of the diagram drawn

// The registry of the diagram's elements, once a diagram is drawn.
export function elementRegistry() {
  return viewer?.get('elementRegistry');
}

export function properties(bo) {
  const found = {};
  for (const ext of bo?.extensionElements?.values || []) {
    if (ext.$type !== 'camunda:Properties') continue;
    for (const prop of ext.values || []) found[prop.name] = prop.value;
  }
  return found;
}

export function documentation(bo) {
  return (bo?.documentation || []).map((doc) => doc.text).join('\n');
}

export function formFields(bo) {
  for (const ext of bo?.extensionElements?.values || []) {
    if (ext.$type === 'camunda:FormData') return ext.fields || [];
  }
  return [];
}

function visited(data, timeline) {
  const done = new Set();
  for (const entry of timeline) {
    if (!entry.step) continue;
    if (['task_completed', 'decision', 'timer_fired', 'message'].includes(entry.type)) {
      done.add(entry.step);
    }
  }
  for (const decision of data.decisions) done.add(decision.step);
  return done;
}

export async function drawDiagram(data, timeline) {
  const key = `${data.pathway}/${data.definition_version}`;
  const container = document.getElementById('diagram');
  if (!viewer) {
    viewer = createViewer({ container });
    viewer.on('element.click', (event) => showWhy(event.element));
  }
  if (diagramOf !== key) {
    const address = `/definitions/${encodeURIComponent(data.pathway)}/versions/${data.definition_version}/files/${encodeURIComponent(data.pathway)}.bpmn`;
    const response = await fetch(address, { credentials: 'same-origin' });
    if (!response.ok) throw new ApiError(response.status, `the diagram could not be read (${response.status})`);
    await viewer.importXML(await response.text());
    diagramOf = key;
    viewer.get('canvas').zoom('fit-viewport');
  }
  mark(data, timeline);
}

const MARKS = ['is-completed', 'is-ready', 'is-taken', 'is-waiting', 'is-red-flag', 'is-current'];
const PLANE = '_plane'; // bpmn-js draws a collapsed subprocess's content on its own plane

// The collapsed subprocesses an element is drawn inside (innermost first): what shows of it
// on the planes above.
function hosts(registry, element) {
  const found = [];
  let at = element;
  while (at) {
    if (!at.parent && at.id.endsWith(PLANE)) {
      const shape = registry.get(at.id.slice(0, -PLANE.length));
      if (!shape) break;
      found.push(shape);
      at = shape.parent;
    } else {
      at = at.parent;
    }
  }
  return found;
}

function mark(data, timeline) {
  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  const overlays = viewer.get('overlays');
  overlays.remove({ type: 'deadline' });
  overlays.remove({ type: 'ready' });
  for (const element of registry.getAll()) {
    for (const name of MARKS) canvas.removeMarker(element, name);
  }
  const done = visited(data, timeline);
  const ready = new Set(data.ready_tasks.map((task) => task.id));
  for (const id of done) if (registry.get(id)) canvas.addMarker(id, 'is-completed');
  // The path taken: the flows between steps the case has been through (or is waiting at).
  const reached = new Set([...done, ...ready, ...data.deadlines.map((d) => d.step)]);
  for (const element of registry.getAll()) {
    const bo = element.businessObject;
    if (element.type === 'bpmn:SequenceFlow' && reached.has(bo.sourceRef?.id) && reached.has(bo.targetRef?.id)) {
      canvas.addMarker(element, 'is-taken');
    }
    if (element.type === 'bpmn:StartEvent' && !element.parent?.businessObject?.$type?.includes('SubProcess')) {
      canvas.addMarker(element, 'is-completed');
    }
  }
  const readyOnHost = new Map(); // "Ready inside" badges stacked over a collapsed subprocess
  for (const task of data.ready_tasks) {
    if (!registry.get(task.id)) continue;
    canvas.addMarker(task.id, 'is-ready');
    if (task.urgent) canvas.addMarker(task.id, 'is-red-flag');
    overlays.add(task.id, 'ready', {
      position: { top: -14, left: 0 },
      html: el('span', { class: 'badge ready-badge' }, 'Ready'),
    });
    for (const host of hosts(registry, registry.get(task.id))) {
      canvas.addMarker(host, 'is-current');
      const stacked = (readyOnHost.get(host.id) || 0) + 1;
      readyOnHost.set(host.id, stacked);
      overlays.add(host, 'ready', {
        position: { top: -14 - 18 * (stacked - 1), left: 0 },
        html: el('span', { class: 'badge ready-badge' }, `Ready inside: ${task.name || task.id}`),
      });
    }
  }
  const onHost = new Map(); // badges stacked under a collapsed subprocess
  for (const deadline of data.deadlines) {
    const late = deadline.status !== 'waiting';
    const when = `${late ? 'Was due' : 'Due'} ${clinicTime(deadline.due_at)}`;
    for (const element of timersOf(registry, deadline)) {
      canvas.addMarker(element, 'is-waiting');
      overlays.add(element, 'deadline', {
        position: { bottom: -6, left: -40 },
        html: el('span', { class: `badge deadline-badge${late ? ' is-due' : ''}`, 'data-deadline': deadline.kind }, when),
      });
      // Seen from above, the collapsed subprocess holding the timer carries the date too.
      hosts(registry, element).forEach((host) => {
        canvas.addMarker(host, 'is-current');
        const stacked = (onHost.get(host.id) || 0) + 1;
        onHost.set(host.id, stacked);
        overlays.add(host, 'deadline', {
          position: { top: host.height + 14 + 20 * (stacked - 1), left: 0 },
          html: el('span', { class: `badge deadline-badge${late ? ' is-due' : ''}`, 'data-host-deadline': deadline.kind }, `${element.businessObject.name || element.id}: ${when}`),
        });
      });
    }
  }
}

// A deadline's timer: the element the engine names (its step), else every timer whose
// pathway.deadline property is the deadline's kind.
export function timersOf(registry, deadline) {
  const named = registry.get(deadline.step);
  if (named) return [named];
  return registry.filter((element) => properties(element.businessObject)['pathway.deadline'] === deadline.kind);
}

function showWhy(element) {
  const bo = element.businessObject;
  if (!bo || element.type === 'label' || element.type === 'bpmn:SequenceFlow' || element.type === 'bpmn:Process') return;
  const props = properties(bo);
  const why = document.getElementById('why');
  document.getElementById('why-title').textContent = `Why this step: ${bo.name || bo.id}`;
  const state = stateOf(bo.id);
  const parts = [el('p', { class: 'muted' }, state)];
  const rationale = documentation(bo);
  parts.push(rationale ? el('p', { class: 'rationale' }, rationale) : el('p', {}, 'The diagram gives no rationale for this element.'));
  if (props['pathway.evidence.source'] || props['pathway.evidence.quote']) {
    parts.push(evidence({ source: props['pathway.evidence.source'], quote: props['pathway.evidence.quote'] }));
  }
  document.getElementById('why-body').replaceChildren(...parts);
  why.hidden = false;
}

function stateOf(id) {
  if (!current) return '';
  if (current.data.ready_tasks.some((task) => task.id === id)) return 'Ready now.';
  const deadline = current.data.deadlines.find((d) => d.step === id);
  if (deadline) return `Waiting: due ${clinicTime(deadline.due_at)}.`;
  if (visited(current.data, current.timeline).has(id)) return 'Done on this case.';
  return 'Not reached on this case.';
}

export function evidence(found) {
  const parts = [];
  if (found.quote) parts.push(el('blockquote', { class: 'quote' }, found.quote));
  if (found.source) parts.push(el('p', { class: 'source' }, 'Source: ', el('cite', {}, found.source)));
  return el('div', { class: 'evidence' }, parts);
}

export function hostActive(hostId) {
  // The boundary event listens while its host (conservative care) is under way: a step or
  // a timer inside it is ready or waiting.
  const registry = viewer.get('elementRegistry');
  const inside = (id) => {
    let element = registry.get(id);
    while (element) {
      if (element.id === hostId || element.id === `${hostId}${PLANE}`) return true;
      element = element.parent;
    }
    return false;
  };
  return current.data.ready_tasks.some((t) => inside(t.id)) || current.data.deadlines.some((d) => inside(d.step));
}
