// The case page's forms: the ready steps (each with its "Why this step" and, for whoever
// may complete it, the form generated from the form in the diagram, as GET /cases/{id} gives
// it), and what every form of the page shares: ids and error slots, the API's errors beside
// their fields, and a case changed meanwhile (reloaded keeping what was typed).
import { api, clinicTime, el } from './api.js';
import { casePath, current, load, mayAct } from './case-state.js';
import { evidence } from './case-diagram.js';

export function fieldId(prefix, id) {
  return `${prefix}-${id}`;
}

export function errorSlot(prefix, id) {
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

export function restore(form, fields, data) {
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

export function clearErrors(form) {
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
export function showErrors(form, prefix, errors, detail) {
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
export function staleAction(form, typed) {
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

export function typedIn(form) {
  const typed = {};
  for (const control of form.querySelectorAll('input[name], textarea[name]')) typed[control.name] = control.value;
  return typed;
}

export function restoreAction(keep) {
  for (const [id, typed] of Object.entries(keep)) {
    const form = document.getElementById(id);
    if (!form) continue;
    for (const [name, value] of Object.entries(typed)) if (form.elements[name]) form.elements[name].value = value;
    const details = form.closest('details');
    if (details) details.open = true;
  }
}

export function readyStep(task) {
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
