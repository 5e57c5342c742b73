// The case page (/cases/{id}): the diagram of the pathway version the case runs on, with the
// case's position on it (lib/case-diagram.js); beside it the ready steps' forms
// (lib/case-forms.js), the deadlines and the actions (move a deadline, report a red flag, add
// a note, cancel the case: lib/case-actions.js); below, the timeline, the clinical record,
// variances and reminders (lib/case-panels.js). This entry loads the case and renders it,
// wiring those together (lib/case-state.js holds what they share). Choosing a step shows why
// it is there: its rationale and evidence. Opened from the worklist (?step=…), the page goes
// straight to that step's form.
import { api, clinicTime, el, showStatus } from './lib/api.js';
import { cancelForm, noteForm, redFlagForm, rescheduleForm } from './lib/case-actions.js';
import { drawDiagram } from './lib/case-diagram.js';
import { readyStep, restore, restoreAction } from './lib/case-forms.js';
import { facts, orNone, showLists } from './lib/case-panels.js';
import { casePath, mayAct, setCurrent, setLoader } from './lib/case-state.js';

const wantedStep = new URLSearchParams(window.location.search).get('step');

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
  showLists(data, timeline);
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
    setCurrent({ data, timeline });
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

setLoader(load);

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
