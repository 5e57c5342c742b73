// The case page's actions, for an active case: report a red flag (while the diagram's
// boundary event listens, with the findings its form names), add a note, move a waiting
// deadline (within the limits the diagram gives) and cancel the case (after a confirmation).
import { api, clinicInput, clinicTime, el, fromClinicInput, zone } from './api.js';
import { casePath, current, load, mayAct } from './case-state.js';
import { documentation, elementRegistry, formFields, hostActive, properties, timersOf } from './case-diagram.js';
import { clearErrors, errorSlot, fieldId, showErrors, staleAction, typedIn } from './case-forms.js';
import { limitsOf } from './limits.js';

export function redFlagForm() {
  const registry = elementRegistry();
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

export function noteForm() {
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

// A deadline's limits, as the diagram writes them on its timer and as dates on this case.
function limitsFor(deadline) {
  const registry = elementRegistry();
  const timer = registry ? timersOf(registry, deadline)[0] : null;
  return limitsOf(deadline, properties(timer?.businessObject), mayAct);
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
export function rescheduleForm(deadline) {
  const prefix = `deadline-${deadline.kind}`;
  const name = deadline.kind.replaceAll('_', ' ');
  const { notes, attrs } = limitsFor(deadline);
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
export function cancelForm() {
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
