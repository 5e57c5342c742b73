// The modeler's migration section: move a pathway's running cases from one version to
// another. The dry run fills a row per running case (can it move, or why not); the
// migration then runs on the server while a labelled progress bar and a count follow it,
// and the live status says when it starts and, at the end, how many cases moved and how
// many were left on the old version. Only modelers and admins have this section.
import { api, el } from './api.js';

const $ = (id) => document.getElementById(id);

const OUTCOMES = {
  can_move: 'can move',
  refused: 'cannot move: left unchanged',
  moved: 'moved',
  skipped: 'skipped',
  failed: 'failed: left unchanged',
  pending: 'waiting',
};

const outcomeText = (outcome) => OUTCOMES[outcome] || outcome.replaceAll('_', ' ');

let pathway = null;

// Offer the versions of `of` (an opened pathway), `from` and `to` chosen (`to`: the newest).
export async function showMigrationVersions(of, from, to) {
  pathway = of;
  const { versions } = await api(`/definitions/${encodeURIComponent(pathway)}/versions`);
  const options = (selected) =>
    versions.map((v) =>
      el(
        'option',
        { value: String(v.version), selected: v.version === selected ? 'selected' : undefined },
        `Version ${v.version} (${v.running_cases} running)`,
      ),
    );
  const newest = versions[versions.length - 1].version;
  $('migrate-from').replaceChildren(...options(from));
  $('migrate-to').replaceChildren(...options(to || newest));
  $('migration').hidden = false;
}

function showMoves(view) {
  const rows = view.cases.map((move) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row' }, el('a', { href: `/cases/${encodeURIComponent(move.case_id)}` }, move.case_id)),
      el('td', {}, outcomeText(move.outcome)),
      el('td', {}, move.reason || '—'),
    ),
  );
  $('moves').replaceChildren(...rows);
  $('moves-caption').textContent = view.dry_run
    ? `Dry run: each running case of version ${view.from}, whether it can move to version ${view.to}`
    : `Migration from version ${view.from} to version ${view.to}: each case`;
  $('moves-wrap').hidden = rows.length === 0;
}

function say(text) {
  $('migration-status').textContent = text;
}

function chosenVersions() {
  return { from: Number($('migrate-from').value), to: Number($('migrate-to').value) };
}

function busy(running) {
  for (const id of ['dry-run', 'migrate', 'migrate-from', 'migrate-to']) $(id).disabled = running;
}

async function dryRun(event) {
  event.preventDefault();
  const { from, to } = chosenVersions();
  try {
    const view = await api(`/definitions/${encodeURIComponent(pathway)}/migrations`, {
      method: 'POST',
      body: { from, to, dry_run: true },
    });
    showMoves(view);
    const { can_move: can = 0, refused = 0 } = view.counts;
    say(
      view.total
        ? `Dry run, nothing moved: ${view.total} running case(s) on version ${from}; ` +
            `${can} can move to version ${to}, ${refused} cannot.`
        : `Dry run: no running cases on version ${from}.`,
    );
  } catch (error) {
    say(`The dry run failed: ${error.message}`);
  }
}

function showProgress(view) {
  $('migration-progress').max = Math.max(view.total, 1);
  $('migration-progress').value = view.total ? view.done : 1;
  $('migration-count').textContent = `${view.done} of ${view.total} case(s) done`;
}

function outcome(view) {
  const { moved = 0, refused = 0, failed = 0, skipped = 0 } = view.counts;
  const ended = view.status === 'finished' ? 'finished' : `stopped (${view.status})`;
  return (
    `Migration ${view.id} ${ended}: ${moved} case(s) moved to version ${view.to}, ` +
    `${refused + failed} left on version ${view.from}` +
    (skipped ? `, ${skipped} skipped (no longer running on version ${view.from}).` : '.')
  );
}

// Start the migration and follow it until the server says it has ended.
async function migrate(onEnded) {
  const { from, to } = chosenVersions();
  busy(true);
  try {
    let view = await api(`/definitions/${encodeURIComponent(pathway)}/migrations`, {
      method: 'POST',
      body: { from, to },
    });
    $('migration-progress-wrap').hidden = false;
    say(`Migration ${view.id} started: moving ${view.total} case(s) from version ${from} to version ${to}…`);
    for (;;) {
      showProgress(view);
      showMoves(view);
      if (view.finished_at || view.status !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
      view = await api(view.href);
    }
    say(outcome(view));
    await showMigrationVersions(pathway, from, to);
    await onEnded();
  } catch (error) {
    say(`The migration failed: ${error.message}`);
  } finally {
    busy(false);
  }
}

export function setUpMigration({ onEnded }) {
  $('migration-form').addEventListener('submit', dryRun);
  $('migrate').addEventListener('click', () => migrate(onEnded));
}
