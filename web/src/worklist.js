// The worklist (/): the caller's queue from GET /worklist, most urgent first (the API's
// order), filtered by the form above it (role, overdue, escalated: kept in the address, so a
// filtered list can be bookmarked and the back button works).
import { api, clinicTime, el, showStatus, zone } from './lib/api.js';

function filters() {
  const given = new URLSearchParams(window.location.search);
  const query = new URLSearchParams();
  const role = given.get('role');
  if (role) query.set('role', role);
  if (given.get('overdue')) query.set('overdue', 'true');
  if (given.get('escalated')) query.set('escalated', 'true');
  const form = document.getElementById('filters');
  form.elements.role.value = role || '';
  form.elements.overdue.checked = Boolean(given.get('overdue'));
  form.elements.escalated.checked = Boolean(given.get('escalated'));
  return query;
}

function flags(item) {
  // The symbol is decoration (hidden from screen readers); the word carries the meaning.
  const mark = (kind, symbol, word) =>
    el('span', { class: `flag ${kind}` }, el('span', { 'aria-hidden': 'true' }, `${symbol} `), word);
  const marks = [];
  if (item.urgent) marks.push(mark('red-flag', '⚑', 'Red flag'));
  if (item.overdue) marks.push(mark('overdue', '⚠', 'Overdue'));
  if (item.escalated) marks.push(mark('escalated', '▲', 'Escalated'));
  return marks.length ? marks : el('span', { class: 'muted' }, '—');
}

function row(item) {
  const classes = [item.urgent && 'is-red-flag', item.overdue && 'is-overdue'].filter(Boolean);
  return el(
    'tr',
    { class: classes.join(' ') || undefined },
    el('td', {}, flags(item)),
    el('th', { scope: 'row' }, el('a', { href: `/cases/${encodeURIComponent(item.case_id)}?step=${encodeURIComponent(item.task)}` }, item.name || item.task)),
    el('td', {}, item.patient_ref || '—'),
    el('td', {}, item.role || '—'),
    el('td', {}, item.due_at ? el('time', { datetime: item.due_at }, clinicTime(item.due_at)) : '—'),
    el('td', {}, item.claimed_by || '—'),
  );
}

async function load() {
  const query = filters();
  const body = document.getElementById('items');
  try {
    const page = await api(`/worklist?${query}`);
    body.replaceChildren(...page.items.map(row));
    const shown = page.items.length;
    const more = page.total > shown ? ` (the first ${shown} of ${page.total})` : '';
    showStatus(shown ? `${page.total} step(s) waiting${more}.` : 'Nothing is waiting for you.');
    document.getElementById('queue').hidden = shown === 0;
  } catch (error) {
    body.replaceChildren();
    document.getElementById('queue').hidden = true;
    showStatus(`The worklist could not be loaded: ${error.message}`, { error: true });
  }
}

document.getElementById('zone').textContent = zone;
load();
