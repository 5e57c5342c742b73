// The case page (/cases/{id}), this slice's minimal one: the case from GET /cases/{id} and
// its timeline, as text. (The diagram with the case's position comes in a later slice.)
import { api, clinicTime, el, showStatus } from './lib/api.js';

const caseId = decodeURIComponent(window.location.pathname.split('/')[2] || '');

function facts(data) {
  const pairs = [
    ['Status', data.status],
    ['Pathway', `${data.pathway} (version ${data.definition_version})`],
    ['Patient', data.patient_ref || '—'],
    ['Escalated', data.escalated ? '▲ Yes' : 'No'],
    ['Opened', clinicTime(data.created_at)],
    ['Last change', clinicTime(data.updated_at)],
  ];
  return pairs.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]);
}

function readyStep(task) {
  const due = task.due_at ? ` — due ${clinicTime(task.due_at)}` : '';
  return el('li', {}, el('strong', {}, task.name || task.id), ` (${task.id})`, due);
}

function event(entry) {
  const who = entry.actor ? ` by ${entry.actor}` : '';
  const step = entry.step ? ` — ${entry.step}` : '';
  return el(
    'li',
    {},
    el('time', { datetime: entry.at }, clinicTime(entry.at)),
    ` ${entry.type}${step}${who}`,
  );
}

async function load() {
  try {
    const [data, timeline] = await Promise.all([
      api(`/cases/${encodeURIComponent(caseId)}`),
      api(`/cases/${encodeURIComponent(caseId)}/timeline`),
    ]);
    document.getElementById('case-title').textContent = `Case ${data.id}`;
    document.getElementById('facts').replaceChildren(...facts(data));
    const ready = data.ready_tasks.map(readyStep);
    document
      .getElementById('ready')
      .replaceChildren(...(ready.length ? ready : [el('li', {}, 'No step is waiting.')]));
    document.getElementById('timeline').replaceChildren(...timeline.map(event));
    document.getElementById('case').hidden = false;
    showStatus('');
  } catch (error) {
    showStatus(`The case could not be loaded: ${error.message}`, { error: true });
  }
}

load();
