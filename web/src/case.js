// The case page (/cases/{id}): the diagram of the pathway version the case runs on, drawn
// with bpmn-js's NavigatedViewer, with the case's position on it (completed steps, ready
// steps, the path taken, due dates on waiting timers); beside it the ready steps' forms
// (generated from the form in the diagram, as GET /cases/{id} gives it), the deadlines and
// the actions (move a deadline, report a red flag, add a note, cancel the case); below, the timeline, the clinical record,
// variances and reminders. Choosing a step shows why it is there: its rationale and evidence.
// Opened from the worklist (?step=…), the page goes straight to that step's form.
import { ApiError, api, clinicInput, clinicTime, el, fromClinicInput, showStatus, zone } from './lib/api.js';
import { createViewer } from './viewer.js';

const caseId = decodeURIComponent(window.location.pathname.split('/')[2] || '');
const casePath = `/cases/${encodeURIComponent(caseId)}`;
const wantedStep = new URLSearchParams(window.location.search).get('step');
const roles = new Set(
  (document.querySelector('meta[name="pathway-roles"]')?.getAttribute('content') || '')
    .split(/\s+/)
    .filter(Boolean),
);

let current = null; // the case as last loaded
let viewer = null;
let diagramOf = null; // "pathway/version" of the diagram drawn

function mayAct(role) {
  if (roles.has('admin') || !role) return true;
  return role.split(',').some((one) => roles.has(one.trim()));
}

// ---- the diagram -------------------------------------------------------------------------

function properties(bo) {
  const found = {};
  for (const ext of bo?.extensionElements?.values || []) {
    if (ext.$type !== 'camunda:Properties') continue;
    for (const prop of ext.values || []) found[prop.name] = prop.value;
  }
  return found;
}

function documentation(bo) {
  return (bo?.documentation || []).map((doc) => doc.text).join('\n');
}

function formFields(bo) {
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

async function drawDiagram(data, timeline) {
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
function timersOf(registry, deadline) {
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

function evidence(found) {
  const parts = [];
  if (found.quote) parts.push(el('blockquote', { class: 'quote' }, found.quote));
  if (found.source) parts.push(el('p', { class: 'source' }, 'Source: ', el('cite', {}, found.source)));
  return el('div', { class: 'evidence' }, parts);
}

// ---- forms -------------------------------------------------------------------------------

function fieldId(prefix, id) {
  return `${prefix}-${id}`;
}

function errorSlot(prefix, id) {
  return el('p', { class: 'field-error', id: fieldId(prefix, `${id}-error`), hidden: true });
}

// One input for a field of the form in the diagram; booleans are a Yes/No choice so that
// "not answered" stays possible for a required field.
function input(prefix, field) {
  const id = fieldId(prefix, field.id);
  const described = `${fieldId(prefix, `${field.id}-error`)}`;
  const required = field.required ? el('span', { class: 'required' }, ' (required)') : null;
  if (field.type === 'boolean') {
    const choice = (value, text) =>
      el(
        'div',
        { class: 'check' },
        el('input', { type: 'radio', id: `${id}-${value}`, name: field.id, value }),
        el('label', { for: `${id}-${value}` }, text),
      );
    return el(
      'fieldset',
      { class: 'choice', 'data-field': field.id, 'aria-describedby': described },
      el('legend', {}, field.label || field.id, required),
      el('div', { class: 'choices' }, choice('true', 'Yes'), choice('false', 'No')),
      errorSlot(prefix, field.id),
    );
  }
  let control;
  if (field.type === 'enum') {
    control = el(
      'select',
      { id, name: field.id, 'aria-describedby': described },
      el('option', { value: '' }, 'Choose…'),
      (field.options || []).map((option) => el('option', { value: option.id }, option.name || option.id)),
    );
  } else {
    const attrs = { id, name: field.id, 'aria-describedby': described };
    if (field.type === 'long') Object.assign(attrs, { type: 'number', step: '1', inputmode: 'numeric' });
    else if (field.type === 'date') attrs.type = 'date';
    else attrs.type = 'text';
    if (field.min !== null && field.min !== undefined) attrs.min = field.min;
    if (field.max !== null && field.max !== undefined) attrs.max = field.max;
    if (field.maxlength) attrs.maxlength = field.maxlength;
    if (field.minlength) attrs.minlength = field.minlength;
    if (field.not_future) attrs.max = new Date().toISOString().slice(0, 10);
    control = el('input', attrs);
  }
  const limits = [];
  if (field.min !== null && field.min !== undefined && field.max !== null && field.max !== undefined) {
    limits.push(`${field.min} to ${field.max}`);
  }
  if (field.not_future) limits.push('not in the future');
  return el(
    'div',
    { class: 'field', 'data-field': field.id },
    el('label', { for: id }, field.label || field.id, required),
    limits.length ? el('span', { class: 'hint' }, limits.join('; ')) : null,
    control,
    errorSlot(prefix, field.id),
  );
}

function valuesOf(form, fields) {
  const data = {};
  for (const field of fields) {
    if (field.type === 'boolean') {
      const chosen = form.querySelector(`input[name="${CSS.escape(field.id)}"]:checked`);
      if (chosen) data[field.id] = chosen.value === 'true';
      continue;
    }
    const raw = form.elements[field.id]?.value ?? '';
    if (raw === '') continue;
    if (field.type === 'long') data[field.id] = /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    else data[field.id] = raw;
  }
  return data;
}

function restore(form, fields, data) {
  for (const field of fields) {
    if (!(field.id in data)) continue;
    if (field.type === 'boolean') {
      const radio = form.querySelector(`input[name="${CSS.escape(field.id)}"][value="${data[field.id]}"]`);
      if (radio) radio.checked = true;
    } else if (form.elements[field.id]) {
      form.elements[field.id].value = String(data[field.id]);
    }
  }
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll('.field-error')) {
    slot.textContent = '';
    slot.hidden = true;
  }
  for (const bad of form.querySelectorAll('[aria-invalid]')) bad.removeAttribute('aria-invalid');
  const summary = form.querySelector('.form-message');
  summary.replaceChildren();
  summary.hidden = true;
}

// The API's 422 errors beside their fields; any without a field of the form go on top.
function showErrors(form, prefix, errors, detail) {
  const elsewhere = [];
  let first = null;
  for (const error of errors || []) {
    const slot = form.querySelector(`#${CSS.escape(fieldId(prefix, `${error.field}-error`))}`);
    if (!slot) {
      elsewhere.push(error.field && error.field !== 'data' ? `${error.field}: ${error.message}` : error.message);
      continue;
    }
    slot.textContent = `Error: ${error.message}`;
    slot.hidden = false;
    const owner = slot.closest('[data-field]');
    const control = owner.matches('fieldset') ? owner : owner.querySelector('input, select, textarea');
    control.setAttribute('aria-invalid', 'true');
    first = first || owner.querySelector('input, select, textarea');
  }
  const summary = form.querySelector('.form-message');
  const count = (errors || []).length;
  summary.replaceChildren(
    el('p', {}, count ? `Not saved: ${count} error(s), shown beside the fields.` : `Not saved: ${detail}`),
    elsewhere.length ? el('ul', {}, elsewhere.map((text) => el('li', {}, text))) : null,
  );
  summary.hidden = false;
  (first || summary).focus();
}

function formShell(prefix, heading, fields, submitText) {
  return el(
    'form',
    { class: 'step-form', id: `${prefix}-form`, novalidate: true, 'aria-labelledby': `${prefix}-heading` },
    el('div', { class: 'form-message error', role: 'alert', tabindex: '-1', hidden: true }),
    fields,
    el('button', { type: 'submit' }, submitText),
  );
}

function stepForm(task) {
  const prefix = `step-${task.id}`;
  const fields = task.form.map((field) => input(prefix, field));
  const form = formShell(prefix, task.name, fields, `Complete ${task.name || task.id}`);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = valuesOf(form, task.form);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await api(`${casePath}/tasks/${encodeURIComponent(task.id)}/complete`, {
        method: 'POST',
        body: { data },
        headers: { 'If-Match': `"${current.data.version}"` },
      });
      await load({ announce: `${task.name || task.id} completed.`, focusStatus: true });
    } catch (error) {
      button.disabled = false;
      if (error.status === 409) return stale(form, task, data);
      showErrors(form, prefix, error.errors, error.message);
    }
  });
  return form;
}

// The case changed meanwhile: say so, and reload it keeping what was typed.
function stale(form, task, typed) {
  const summary = form.querySelector('.form-message');
  const again = el('button', { type: 'button', class: 'secondary' }, 'Reload the case, keeping what you typed');
  again.addEventListener('click', async () => {
    await load({ announce: 'The case was reloaded; what you typed is kept. Check it and complete again.', keep: { [task.id]: typed } });
  });
  summary.replaceChildren(
    el('p', {}, 'Not saved: the case has changed since you opened it (someone else acted on it).'),
    again,
  );
  summary.hidden = false;
  summary.focus();
}

// The same for an action's form: reloaded, the form is open again with what was typed.
function staleAction(form, typed) {
  const summary = form.querySelector('.form-message');
  const again = el('button', { type: 'button', class: 'secondary' }, 'Reload the case, keeping what you typed');
  again.addEventListener('click', async () => {
    await load({ announce: 'The case was reloaded; what you typed is kept. Check it and send again.', keepAction: { [form.id]: typed } });
  });
  summary.replaceChildren(
    el('p', {}, 'Not saved: the case has changed since you opened it (someone else acted on it).'),
    again,
  );
  summary.hidden = false;
  summary.focus();
}

function typedIn(form) {
  const typed = {};
  for (const control of form.querySelectorAll('input[name], textarea[name]')) typed[control.name] = control.value;
  return typed;
}

function restoreAction(keep) {
  for (const [id, typed] of Object.entries(keep)) {
    const form = document.getElementById(id);
    if (!form) continue;
    for (const [name, value] of Object.entries(typed)) if (form.elements[name]) form.elements[name].value = value;
    const details = form.closest('details');
    if (details) details.open = true;
  }
}

function readyStep(task) {
  const prefix = `step-${task.id}`;
  const due = task.due_at ? el('p', {}, 'Due ', el('time', { datetime: task.due_at }, clinicTime(task.due_at)), task.overdue ? ' — overdue' : '') : null;
  const allowed = mayAct(task.role);
  return el(
    'article',
    { class: `ready-step${task.urgent ? ' is-red-flag' : ''}`, id: `ready-${task.id}` },
    el('h3', { id: `${prefix}-heading`, tabindex: '-1' }, task.name || task.id),
    el('p', { class: 'muted' }, `Step ${task.id}, for the ${task.role || 'any'} role`, task.urgent ? ' — red flag' : ''),
    due,
    el(
      'details',
      { class: 'why-inline' },
      el('summary', {}, 'Why this step'),
      task.evidence?.rationale ? el('p', {}, task.evidence.rationale) : null,
      task.evidence ? evidence(task.evidence) : null,
    ),
    allowed ? stepForm(task) : el('p', { class: 'muted' }, `Only the ${task.role} role may complete this step.`),
  );
}

function redFlagForm() {
  const registry = viewer?.get('elementRegistry');
  const boundary = registry?.get('red_flag_reported');
  const props = properties(boundary?.businessObject);
  const waiting = current.data.status === 'active' && boundary && registry.get(boundary.host?.id) && hostActive(boundary.host.id);
  if (!waiting || !mayAct(props['pathway.role'])) return [];
  const source = registry.get(props['pathway.form'] || '')?.businessObject;
  const fields = formFields(source).map((f) => ({ id: f.id, label: f.label || f.id }));
  const prefix = 'red-flag';
  const boxes = fields.map((field) =>
    el(
      'div',
      { class: 'check' },
      el('input', { type: 'checkbox', id: fieldId(prefix, field.id), name: field.id }),
      el('label', { for: fieldId(prefix, field.id) }, field.label),
    ),
  );
  const form = el(
    'form',
    { class: 'step-form', id: 'red-flag-form', novalidate: true },
    el('div', { class: 'form-message error', role: 'alert', tabindex: '-1', hidden: true }),
    el(
      'fieldset',
      { 'data-field': 'data', 'aria-describedby': 'red-flag-data-error' },
      el('legend', {}, 'Findings now present'),
      boxes,
      errorSlot(prefix, 'data'),
    ),
    el('button', { type: 'submit' }, 'Report the red flag'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = Object.fromEntries(fields.map((field) => [field.id, form.elements[field.id].checked]));
    try {
      await api(`${casePath}/messages/red_flag_reported`, { method: 'POST', body: { data } });
      await load({ announce: 'Red flag reported: the case moves to urgent care.', focusStatus: true });
    } catch (error) {
      showErrors(form, prefix, error.errors, error.message);
    }
  });
  return [
    el(
      'details',
      { class: 'action' },
      el('summary', {}, 'Report a red flag'),
      el('p', { class: 'hint' }, documentation(boundary.businessObject)),
      form,
    ),
  ];
}

function hostActive(hostId) {
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

function noteForm() {
  const prefix = 'note';
  const form = el(
    'form',
    { class: 'step-form', id: 'note-form', novalidate: true },
    el('div', { class: 'form-message error', role: 'alert', tabindex: '-1', hidden: true }),
    el(
      'div',
      { class: 'field', 'data-field': 'text' },
      el('label', { for: 'note-text' }, 'Note'),
      el('textarea', { id: 'note-text', name: 'text', maxlength: '4000', rows: '3', 'aria-describedby': 'note-text-error' }),
      errorSlot(prefix, 'text'),
    ),
    el('button', { type: 'submit' }, 'Add the note'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      await api(`${casePath}/notes`, { method: 'POST', body: { text: form.elements.text.value } });
      await load({ announce: 'Note added.' });
    } catch (error) {
      showErrors(form, prefix, error.errors, error.message);
    }
  });
  return el('details', { class: 'action' }, el('summary', {}, 'Add a note'), form);
}

// A limit's expression in words where it is the usual shape ("add_weeks(conservative_care_started,
// 6)" is "6 weeks after conservative care started"); otherwise as the diagram writes it.
function inWords(expression) {
  const found = /^add_(days|weeks|months)\(\s*([a-z_][a-z0-9_]*)\s*,\s*(\d+)\s*\)$/i.exec(expression.trim());
  if (!found) return expression;
  const [, unit, name, count] = found;
  return `${count} ${count === '1' ? unit.slice(0, -1) : unit} after ${name.replaceAll('_', ' ')}`;
}

// A deadline's limits as the diagram writes them on its timer (pathway.deadline.*).
function limitsOf(deadline) {
  const registry = viewer?.get('elementRegistry');
  const timer = registry ? timersOf(registry, deadline)[0] : null;
  const props = properties(timer?.businessObject);
  const notes = ['Not in the past.'];
  const attrs = { min: clinicInput(Date.now()) };
  if (props['pathway.deadline.later'] === 'never') {
    notes.push(`It may be brought forward, never later than it is: latest ${clinicTime(deadline.due_at)}.`);
    attrs.max = clinicInput(deadline.due_at);
  }
  if (props['pathway.deadline.latest']) {
    notes.push(`Latest: ${inWords(props['pathway.deadline.latest'])}. ${props['pathway.deadline.latest.rule'] || ''}`.trim());
  }
  if (props['pathway.deadline.earliest']) {
    const needs = props['pathway.deadline.earlier.role'];
    const records = props['pathway.deadline.earlier.variance'];
    notes.push(
      `Earliest without a variance: ${inWords(props['pathway.deadline.earliest'])}.` +
        (needs ? ` Earlier needs the ${needs} role` : ' Earlier') +
        (records ? ` and records the variance ${records.replaceAll('_', ' ')}.` : '.') +
        (props['pathway.deadline.earlier.rule'] ? ` ${props['pathway.deadline.earlier.rule']}` : ''),
    );
  }
  return { notes, attrs };
}

function reasonField(prefix, label) {
  return el(
    'div',
    { class: 'field', 'data-field': 'reason' },
    el('label', { for: fieldId(prefix, 'reason') }, label, el('span', { class: 'required' }, ' (required)')),
    el('textarea', { id: fieldId(prefix, 'reason'), name: 'reason', maxlength: '2000', rows: '2', 'aria-describedby': fieldId(prefix, 'reason-error') }),
    errorSlot(prefix, 'reason'),
  );
}

// Moving a waiting deadline: a date and time in the clinic's zone, within the limits the
// diagram gives, and a reason (which goes into the timeline).
function rescheduleForm(deadline) {
  const prefix = `deadline-${deadline.kind}`;
  const name = deadline.kind.replaceAll('_', ' ');
  const { notes, attrs } = limitsOf(deadline);
  const hintId = fieldId(prefix, 'due_at-hint');
  const form = el(
    'form',
    { class: 'step-form', id: `${prefix}-form`, novalidate: true, 'aria-label': `Move ${name}` },
    el('div', { class: 'form-message error', role: 'alert', tabindex: '-1', hidden: true }),
    el(
      'div',
      { class: 'field', 'data-field': 'due_at' },
      el('label', { for: fieldId(prefix, 'due_at') }, `New due date and time (${zone})`, el('span', { class: 'required' }, ' (required)')),
      el('span', { class: 'hint', id: hintId }, notes.join(' ')),
      el('input', {
        type: 'datetime-local',
        id: fieldId(prefix, 'due_at'),
        name: 'due_at',
        value: clinicInput(deadline.due_at),
        'aria-describedby': `${hintId} ${fieldId(prefix, 'due_at-error')}`,
        ...attrs,
      }),
      errorSlot(prefix, 'due_at'),
    ),
    reasonField(prefix, 'Reason for the move'),
    el('button', { type: 'submit' }, `Move ${name}`),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const typed = typedIn(form);
    const dueAt = fromClinicInput(typed.due_at);
    if (!dueAt) {
      showErrors(form, prefix, [{ field: 'due_at', message: 'give a date and a time' }], '');
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await api(`${casePath}/deadlines/${encodeURIComponent(deadline.kind)}/reschedule`, {
        method: 'POST',
        body: { due_at: dueAt, reason: typed.reason },
        headers: { 'If-Match': `"${current.data.version}"` },
      });
      await load({ announce: `${name} moved to ${clinicTime(dueAt)}.`, focusStatus: true });
    } catch (error) {
      button.disabled = false;
      if (error.status === 409) return staleAction(form, typed);
      // A move only another role may make (403) is about the time chosen: said beside it.
      const errors = error.status === 403 ? [{ field: 'due_at', message: error.message }] : error.errors;
      showErrors(form, prefix, errors, error.message);
    }
  });
  return el('details', { class: 'action' }, el('summary', {}, `Move this deadline`), form);
}

// Cancelling the case: a reason, then a confirmation; afterwards nothing more is offered.
function cancelForm() {
  const prefix = 'cancel';
  const confirm = el(
    'div',
    { class: 'confirm', id: 'cancel-confirm', role: 'group', 'aria-labelledby': 'cancel-confirm-text', hidden: true },
    el('p', { id: 'cancel-confirm-text', tabindex: '-1' }, 'Cancel this case? Its deadlines stop, unsent reminders are dropped, and it cannot be undone.'),
    el('button', { type: 'submit', class: 'danger' }, 'Yes, cancel the case'),
    el('button', { type: 'button', class: 'secondary', id: 'cancel-keep' }, 'No, keep the case'),
  );
  const ask = el('button', { type: 'button', id: 'cancel-ask' }, 'Cancel the case…');
  const form = el(
    'form',
    { class: 'step-form', id: 'cancel-form', novalidate: true, 'aria-label': 'Cancel the case' },
    el('div', { class: 'form-message error', role: 'alert', tabindex: '-1', hidden: true }),
    reasonField(prefix, 'Reason for cancelling'),
    ask,
    confirm,
  );
  const asking = (yes) => {
    confirm.hidden = !yes;
    ask.hidden = yes;
    form.elements.reason.readOnly = yes;
  };
  ask.addEventListener('click', () => {
    clearErrors(form);
    if (!form.elements.reason.value.trim()) {
      showErrors(form, prefix, [{ field: 'reason', message: 'give the reason for cancelling' }], '');
      return;
    }
    asking(true);
    document.getElementById('cancel-confirm-text').focus();
  });
  confirm.querySelector('#cancel-keep').addEventListener('click', () => {
    asking(false);
    ask.focus();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (confirm.hidden) return ask.click(); // Enter in the reason asks first
    clearErrors(form);
    const typed = typedIn(form);
    try {
      await api(`${casePath}/cancel`, {
        method: 'POST',
        body: { reason: typed.reason },
        headers: { 'If-Match': `"${current.data.version}"` },
      });
      await load({ announce: 'The case is cancelled.', focusStatus: true });
    } catch (error) {
      asking(false);
      if (error.status === 409) return staleAction(form, typed);
      showErrors(form, prefix, error.errors, error.message);
    }
  });
  return el('details', { class: 'action' }, el('summary', {}, 'Cancel the case'), form);
}

// ---- the lists ---------------------------------------------------------------------------

function facts(data) {
  const pairs = [
    ['Status', data.status + (data.end ? ` (${data.end})` : '')],
    ['Pathway', `${data.pathway} (version ${data.definition_version})`],
    ['Patient', data.patient_ref || '—'],
    ['Escalated', data.escalated ? '▲ Yes' : 'No'],
    ['Opened', clinicTime(data.created_at)],
    ['Last change', clinicTime(data.updated_at)],
  ];
  if (data.cancel_reason) pairs.push(['Cancelled because', data.cancel_reason]);
  return pairs.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]);
}

function event(entry) {
  const who = entry.actor ? ` by ${entry.actor}` : '';
  const step = entry.step ? ` — ${entry.step}` : '';
  const detail = entry.detail || {};
  let text = entry.type === 'note' && detail.text ? `: ${detail.text}` : '';
  if (entry.type === 'deadline_rescheduled' && detail.due_at) text += ` to ${clinicTime(detail.due_at)}`;
  if (entry.type !== 'note' && detail.reason) text += ` — reason: ${detail.reason}`;
  return el('li', {}, el('time', { datetime: entry.at }, clinicTime(entry.at)), ` ${entry.type.replaceAll('_', ' ')}${step}${who}${text}`);
}

function shown(value) {
  if (value === true) return 'Yes';
  if (value === false) return 'No';
  if (value === null || value === undefined) return '— (not recorded)';
  return String(value);
}

function recordTable(record) {
  if (!record.length) return [el('caption', {}, 'Nothing recorded yet.')];
  return [
    el('caption', {}, 'What was entered, by whom and when (times in the clinic time zone).'),
    el('thead', {}, el('tr', {}, ['Step', 'Field', 'Value', 'Entered by', 'When'].map((h) => el('th', { scope: 'col' }, h)))),
    el(
      'tbody',
      {},
      record.map((entry) =>
        el(
          'tr',
          {},
          el('td', {}, entry.step),
          el('th', { scope: 'row' }, entry.field),
          el('td', {}, shown(entry.value)),
          el('td', {}, entry.entered_by || '—'),
          el('td', {}, el('time', { datetime: entry.entered_at }, clinicTime(entry.entered_at))),
        ),
      ),
    ),
  ];
}

function orNone(items, none) {
  return items.length ? items : [el('li', { class: 'muted' }, none)];
}

function render(data, timeline, keep = {}, keepAction = {}) {
  const active = data.status === 'active';
  // Moving deadlines and cancelling are the care team's (the API's rule), admins included.
  const careTeam = mayAct('coordinator,clinician');
  document.getElementById('case-title').textContent = `Case ${data.id}`;
  document.getElementById('facts').replaceChildren(...facts(data));
  const ready = document.getElementById('ready');
  const steps = active ? data.ready_tasks : [];
  ready.replaceChildren(...(steps.length ? steps.map(readyStep) : [el('p', {}, 'No step is waiting.')]));
  for (const task of data.ready_tasks) {
    const form = document.getElementById(`step-${task.id}-form`);
    if (form && keep[task.id]) restore(form, task.form, keep[task.id]);
  }
  document.getElementById('deadlines').replaceChildren(
    ...orNone(
      data.deadlines.map((d) =>
        el(
          'li',
          { id: `deadline-${d.kind}` },
          el('strong', {}, d.kind.replaceAll('_', ' ')),
          ` (${d.step}): ${d.status === 'waiting' ? 'due' : 'was due'} `,
          el('time', { datetime: d.due_at }, clinicTime(d.due_at)),
          active && careTeam && d.status === 'waiting' ? rescheduleForm(d) : null,
        ),
      ),
      'No deadline is waiting.',
    ),
  );
  document.getElementById('timeline').replaceChildren(...timeline.map(event));
  document.getElementById('record').replaceChildren(...recordTable(data.record));
  document.getElementById('variances').replaceChildren(
    ...orNone(
      data.variances.map((v) => el('li', {}, el('strong', {}, v.code.replaceAll('_', ' ')), ` at ${v.step}`, v.rule ? `: ${v.rule}` : '', ' — ', el('time', { datetime: v.at }, clinicTime(v.at)))),
      'No variance.',
    ),
  );
  document.getElementById('reminders').replaceChildren(
    ...orNone(
      data.reminders.map((r) => el('li', {}, `${r.kind.replaceAll('_', ' ')} (${r.step}) to ${r.recipients.join(', ') || '—'}: ${r.status}, due `, el('time', { datetime: r.due_at }, clinicTime(r.due_at)))),
      'No reminder.',
    ),
  );
  document.getElementById('red-flag').replaceChildren(...(active ? redFlagForm() : []));
  document.getElementById('note').replaceChildren(...(active ? [noteForm()] : []));
  document.getElementById('cancel').replaceChildren(...(active && careTeam ? [cancelForm()] : []));
  document.getElementById('no-actions').hidden = active;
  document.getElementById('no-actions').textContent = active ? '' : `This case is ${data.status}: no action remains.`;
  restoreAction(keepAction);
}

async function load({ announce = '', keep = {}, keepAction = {}, focusStatus = false } = {}) {
  try {
    const [data, timeline] = await Promise.all([api(casePath), api(`${casePath}/timeline`)]);
    current = { data, timeline };
    document.getElementById('case').hidden = false;
    try {
      await drawDiagram(data, timeline);
      document.getElementById('diagram-error').hidden = true;
    } catch (error) {
      const note = document.getElementById('diagram-error');
      note.textContent = `The diagram could not be drawn: ${error.message}`;
      note.hidden = false;
    }
    render(data, timeline, keep, keepAction);
    showStatus(announce);
    if (focusStatus) document.getElementById('status').focus();
    return data;
  } catch (error) {
    showStatus(`The case could not be loaded: ${error.message}`, { error: true });
    return null;
  }
}

load().then((data) => {
  if (!data || !wantedStep) return;
  const heading = document.getElementById(`step-${wantedStep}-heading`);
  if (heading) {
    heading.scrollIntoView({ block: 'start' });
    heading.focus();
  } else {
    showStatus('That step is no longer waiting on this case.');
  }
});
