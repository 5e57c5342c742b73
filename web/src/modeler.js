// The modeler (/modeler): pathways and their versions; a version opened in bpmn-js's Modeler
// with its properties panel (Camunda properties, the pathway's element templates) and
// bpmnlint (the project's rules) as one edits. Modelers and admins also validate on the
// server (each problem shown on its element), see the diff against the deployed version in
// clinical words, deploy, and move running cases (dry run first: lib/migration.js). Other
// roles only read: the server leaves those controls out of their page, and the API refuses
// them anyway. The diagram is worked from the keyboard too (its SVG takes the focus).
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css';
import '@bpmn-io/properties-panel/dist/assets/properties-panel.css';
import 'bpmn-js-element-templates/dist/assets/element-templates.css';
import 'bpmn-js-bpmnlint/dist/assets/css/bpmn-js-bpmnlint.css';
import './lib/modeler.css';
import Modeler from 'bpmn-js/lib/Modeler';
import {
  BpmnPropertiesPanelModule,
  BpmnPropertiesProviderModule,
  CamundaPlatformPropertiesProviderModule,
} from 'bpmn-js-properties-panel';
import { ElementTemplatesPropertiesProviderModule } from 'bpmn-js-element-templates';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';
import lintModule from 'bpmn-js-bpmnlint';
import lintConfig from 'pathway-bpmnlint-config';
import elementTemplates from 'pathway-element-templates';
import { ApiError, api, breakable, clinicTime, el, showStatus } from './lib/api.js';
import { setUpMigration, showMigrationVersions } from './lib/migration.js';
import unstyledIconsModule from './lib/unstyled-icons.js';

export function createModeler({ container, propertiesParent }) {
  return new Modeler({
    container,
    propertiesPanel: { parent: propertiesParent },
    elementTemplates,
    linting: { bpmnlint: lintConfig, active: true },
    additionalModules: [
      BpmnPropertiesPanelModule,
      BpmnPropertiesProviderModule,
      CamundaPlatformPropertiesProviderModule,
      ElementTemplatesPropertiesProviderModule,
      lintModule,
      unstyledIconsModule,
    ],
    moddleExtensions: { camunda: camundaModdle },
  });
}

const $ = (id) => document.getElementById(id);
const canChange = Boolean($('change-actions'));
const modeler = createModeler({ container: $('canvas'), propertiesParent: $('properties') });

// bpmn-js 18 (diagram-js 15) binds its keyboard shortcuts to the canvas's own SVG element
// (focusable, tabindex 0) and hears them while it has the focus: that element is the
// diagram's one stop in the Tab order, named, and described by the page's list of shortcuts.
const surface = modeler.get('keyboard').getBinding();
surface.setAttribute('role', 'application');
surface.setAttribute('aria-roledescription', 'diagram editor');
surface.setAttribute('aria-label', 'Diagram');
surface.setAttribute('aria-describedby', 'keyboard-hint');
const focusDiagram = () => modeler.get('canvas').focus();

// The version open in the editor: its pathway, number and files (the BPMN file is edited;
// the DMN files it calls go along unchanged).
let opened = null;

function csrf() {
  const found = document.cookie.split('; ').find((part) => part.startsWith('pathway_csrf='));
  return found ? decodeURIComponent(found.slice('pathway_csrf='.length)) : '';
}

// Diagram files go up as multipart/form-data, one part named 'files' each.
async function upload(path, files) {
  const form = new FormData();
  for (const { name, blob } of files) form.append('files', blob, name);
  const response = await fetch(path, {
    method: 'POST',
    headers: { Accept: 'application/json', 'X-CSRF-Token': csrf() },
    body: form,
    credentials: 'same-origin',
  });
  const data = (response.headers.get('content-type') || '').includes('json')
    ? await response.json()
    : null;
  if (!response.ok && response.status !== 422) {
    throw new ApiError(response.status, (data && data.detail) || response.statusText);
  }
  return { status: response.status, data };
}

async function editedFiles() {
  const { xml } = await modeler.saveXML({ format: true });
  const bpmn = new Blob([xml], { type: 'application/xml' });
  return opened.files.map((file) =>
    file.name === opened.bpmnName ? { name: file.name, blob: bpmn } : file,
  );
}

// --- the catalogue ---------------------------------------------------------------------

async function loadCatalogue() {
  const { pathways } = await api('/definitions');
  const rows = [];
  const all = {};
  for (const entry of pathways) {
    const { versions } = await api(`/definitions/${encodeURIComponent(entry.pathway)}/versions`);
    all[entry.pathway] = versions;
    for (const v of versions) {
      rows.push(
        el(
          'tr',
          {},
          el('th', { scope: 'row' }, breakable(v.pathway)),
          el('td', {}, `Version ${v.version}${v.version === entry.latest_version ? ' (newest)' : ''}`),
          el('td', {}, el('time', { datetime: v.created_at }, clinicTime(v.created_at))),
          el('td', {}, String(v.running_cases)),
          el(
            'td',
            {},
            el(
              'button',
              { type: 'button', class: 'secondary', 'data-open': `${v.pathway}/${v.version}` },
              'Open',
              el('span', { class: 'visually-hidden' }, ` ${v.pathway} version ${v.version}`),
            ),
          ),
        ),
      );
    }
  }
  $('versions').replaceChildren(...rows);
  for (const button of $('versions').querySelectorAll('button[data-open]')) {
    const [pathway, version] = button.dataset.open.split('/');
    const found = all[pathway].find((v) => String(v.version) === version);
    button.addEventListener('click', () => open(found));
  }
  $('catalogue').hidden = rows.length === 0;
  return all;
}

// --- the editor --------------------------------------------------------------------------

async function open(version) {
  showStatus(`Opening ${version.pathway} version ${version.version}…`);
  try {
    const files = await Promise.all(
      version.files.map(async (file) => {
        const response = await fetch(file.href, { credentials: 'same-origin' });
        if (!response.ok) throw new ApiError(response.status, `${file.name} could not be read`);
        return { name: file.name, blob: await response.blob() };
      }),
    );
    const bpmn = files.find((file) => file.name.endsWith('.bpmn'));
    opened = { pathway: version.pathway, version: version.version, files, bpmnName: bpmn.name };
    $('editor').hidden = false;
    $('editor-title').textContent = `${version.pathway}, version ${version.version}`;
    surface.setAttribute('aria-label', `Diagram of ${version.pathway} version ${version.version}`);
    await modeler.importXML(await bpmn.blob.text());
    modeler.get('canvas').zoom('fit-viewport');
    clearServerFindings();
    if (canChange) {
      $('diff').textContent = `Compare with version ${version.version}`;
      showMigrationVersions(version.pathway, version.version);
    }
    showStatus(`Editing ${version.pathway} version ${version.version}. Nothing is deployed until you deploy.`);
    focusDiagram();
  } catch (error) {
    showStatus(`The diagram could not be opened: ${error.message}`, { error: true });
  }
}

$('import-file').addEventListener('change', async (event) => {
  const [file] = event.target.files;
  if (!file) return;
  if (!opened) {
    showStatus('Open a version first: the imported diagram is compared with it.', { error: true });
    return;
  }
  try {
    await modeler.importXML(await file.text());
    modeler.get('canvas').zoom('fit-viewport');
    clearServerFindings();
    showStatus(`Imported ${file.name} into the editor (not deployed).`);
  } catch (error) {
    showStatus(`${file.name} could not be imported: ${error.message}`, { error: true });
  }
});

// --- the server's findings -----------------------------------------------------------------

function clearServerFindings() {
  if (!canChange) return;
  const overlays = modeler.get('overlays');
  const canvas = modeler.get('canvas');
  overlays.remove({ type: 'server-problem' });
  for (const element of modeler.get('elementRegistry').getAll()) {
    canvas.removeMarker(element, 'has-server-problem');
  }
  $('problems').replaceChildren();
  $('problems-summary').textContent = 'Not validated yet.';
  $('changes').replaceChildren();
  $('changes-summary').textContent = 'Not compared yet.';
}

function showProblems(problems) {
  const registry = modeler.get('elementRegistry');
  const overlays = modeler.get('overlays');
  const canvas = modeler.get('canvas');
  overlays.remove({ type: 'server-problem' });
  for (const element of registry.getAll()) canvas.removeMarker(element, 'has-server-problem');
  const items = problems.map((problem) => {
    const element = problem.element_id ? registry.get(problem.element_id) : null;
    const where = [problem.file, problem.line && `line ${problem.line}`, problem.element_id]
      .filter(Boolean)
      .join(', ');
    const sentence = (text) => String(text).replace(/\.*$/, '.');
    const item = el('li', {}, `${where}: ${sentence(problem.message)} To fix: ${sentence(problem.fix)}`);
    if (element) {
      canvas.addMarker(element, 'has-server-problem');
      overlays.add(element, 'server-problem', {
        position: { bottom: -8, left: 0 },
        html: el('div', { class: 'server-problem', role: 'note' }, problem.message),
      });
      const show = el('button', { type: 'button', class: 'secondary' }, 'Show on the diagram');
      show.addEventListener('click', () => {
        // An element inside a collapsed sub-process is on that sub-process's own plane.
        const root = canvas.findRoot(element);
        if (root && root !== canvas.getRootElement()) canvas.setRootElement(root);
        canvas.scrollToElement(element);
        modeler.get('selection').select(element);
        focusDiagram();
      });
      item.append(show);
    }
    return item;
  });
  $('problems').replaceChildren(...items);
  $('problems-summary').textContent = problems.length
    ? `${problems.length} problem(s): it cannot be deployed as it is.`
    : 'No problems: it can be deployed.';
}

async function validate() {
  showStatus('Validating on the server…');
  try {
    const { data } = await upload('/definitions/validate', await editedFiles());
    showProblems(data.problems);
    showStatus(data.deployable ? 'The server found no problems.' : `The server found ${data.problems.length} problem(s).`, {
      error: !data.deployable,
    });
  } catch (error) {
    showStatus(`Validation failed: ${error.message}`, { error: true });
  }
}

async function compare() {
  showStatus(`Comparing with version ${opened.version}…`);
  const path = `/definitions/${encodeURIComponent(opened.pathway)}/versions/${opened.version}/diff`;
  try {
    const { status, data } = await upload(path, await editedFiles());
    if (status === 422) {
      showProblems(data.problems);
      $('changes').replaceChildren();
      $('changes-summary').textContent = 'Not compared: fix the problems the server found first.';
      showStatus(`The server found ${data.problems.length} problem(s).`, { error: true });
      return;
    }
    const items = data.changes.map((change) =>
      el(
        'li',
        {},
        change.breaking ? el('span', { class: 'breaking' }, 'Breaking: ') : null,
        change.text,
      ),
    );
    $('changes').replaceChildren(...items);
    const breaking = data.summary.breaking;
    $('changes-summary').textContent = items.length
      ? `${items.length} change(s) from version ${opened.version}, ${breaking} breaking.`
      : `No changes from version ${opened.version}.`;
    showStatus(`Compared with version ${opened.version}.`);
  } catch (error) {
    showStatus(`The comparison failed: ${error.message}`, { error: true });
  }
}

async function deploy() {
  showStatus('Deploying…');
  try {
    const { status, data } = await upload('/definitions', await editedFiles());
    if (status === 422) {
      showProblems(data.problems);
      showStatus(`Not deployed: the server found ${data.problems.length} problem(s).`, { error: true });
      return;
    }
    const from = opened.version;
    const all = await loadCatalogue();
    const deployed = all[data.pathway].find((v) => v.version === data.version);
    showStatus(
      data.created
        ? `Deployed ${data.pathway} as version ${data.version}. New cases start on it.`
        : `These files are already version ${data.version}: nothing new was deployed.`,
    );
    if (deployed) {
      opened = { ...opened, pathway: data.pathway, version: data.version };
      $('editor-title').textContent = `${data.pathway}, version ${data.version}`;
      surface.setAttribute('aria-label', `Diagram of ${data.pathway} version ${data.version}`);
      $('diff').textContent = `Compare with version ${data.version}`;
      showMigrationVersions(data.pathway, from, data.version);
    }
  } catch (error) {
    showStatus(`Deployment failed: ${error.message}`, { error: true });
  }
}

if (canChange) {
  $('validate').addEventListener('click', validate);
  $('diff').addEventListener('click', compare);
  $('deploy').addEventListener('click', deploy);
  setUpMigration({ onEnded: loadCatalogue });
}

loadCatalogue()
  .then((all) => {
    const count = Object.keys(all).length;
    showStatus(count ? `${count} pathway(s). Open a version to edit it.` : 'No pathways are deployed.');
  })
  .catch((error) => showStatus(`The pathways could not be loaded: ${error.message}`, { error: true }));
