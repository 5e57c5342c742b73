// A deadline's limits, for the form that moves it: in words as the diagram writes them on
// its timer (pathway.deadline.*), and as the dates they come to on this case, which the API
// works out with the same code that checks a move (latest_at, earliest_at). The dates bound
// the date-time field (min, max); the engine still checks every move.
import { clinicInput, clinicTime } from './api.js';

// A limit's expression in words where it is the usual shape ("add_weeks(conservative_care_started,
// 6)" is "6 weeks after conservative care started"); otherwise as the diagram writes it.
export function inWords(expression) {
  const found = /^add_(days|weeks|months)\(\s*([a-z_][a-z0-9_]*)\s*,\s*(\d+)\s*\)$/i.exec(expression.trim());
  if (!found) return expression;
  const [, unit, name, count] = found;
  return `${count} ${count === '1' ? unit.slice(0, -1) : unit} after ${name.replaceAll('_', ' ')}`;
}

// The notes beside the field and its min and max: never in the past; never past latest_at;
// not before earliest_at for someone without the role that may bring it earlier (`mayAct`).
export function limitsOf(deadline, props, mayAct, now = Date.now()) {
  const notes = ['Not in the past.'];
  const attrs = { min: clinicInput(now) };
  if (props['pathway.deadline.later'] === 'never') {
    notes.push('It may be brought forward, never later than it is.');
  }
  if (props['pathway.deadline.latest']) {
    notes.push(`The guideline's latest: ${inWords(props['pathway.deadline.latest'])}. ${props['pathway.deadline.latest.rule'] || ''}`.trim());
  }
  if (deadline.latest_at) {
    notes.push(`Latest on this case: ${clinicTime(deadline.latest_at)}.`);
    attrs.max = clinicInput(deadline.latest_at);
  } else if (props['pathway.deadline.latest']) {
    notes.push('Its latest date cannot be worked out on this case.');
  }
  if (props['pathway.deadline.earliest']) {
    const needs = props['pathway.deadline.earlier.role'];
    const records = props['pathway.deadline.earlier.variance'];
    const on = deadline.earliest_at ? ` (on this case ${clinicTime(deadline.earliest_at)})` : '';
    notes.push(
      `Earliest without a variance: ${inWords(props['pathway.deadline.earliest'])}${on}.` +
        (needs ? ` Earlier needs the ${needs} role` : ' Earlier') +
        (records ? ` and records the variance ${records.replaceAll('_', ' ')}.` : '.') +
        (props['pathway.deadline.earlier.rule'] ? ` ${props['pathway.deadline.earlier.rule']}` : ''),
    );
    if (deadline.earliest_at && !mayAct(needs) && Date.parse(deadline.earliest_at) > now) {
      attrs.min = clinicInput(deadline.earliest_at);
    }
  }
  return { notes, attrs };
}
