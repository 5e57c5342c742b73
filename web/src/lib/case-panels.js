// The case page's panels: the case's facts, and the lists below the diagram (the timeline,
// the clinical record as a table, variances and reminders), each saying so when empty.
import { breakable, clinicTime, el } from './api.js';

export function facts(data) {
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
          el('td', {}, breakable(entry.step)),
          el('th', { scope: 'row' }, breakable(entry.field)),
          el('td', {}, shown(entry.value)),
          el('td', {}, entry.entered_by || '—'),
          el('td', {}, el('time', { datetime: entry.entered_at }, clinicTime(entry.entered_at))),
        ),
      ),
    ),
  ];
}

export function orNone(items, none) {
  return items.length ? items : [el('li', { class: 'muted' }, none)];
}

// The timeline, the clinical record, variances and reminders, as the case and its timeline are.
export function showLists(data, timeline) {
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
}
