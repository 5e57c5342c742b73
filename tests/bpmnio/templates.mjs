// Element templates, as Camunda Modeler uses them (for tests/bpmnio/test_templates.py).
//
//   node templates.mjs validate TEMPLATE.json...
//     Check each file with the validator Camunda Modeler loads templates with; prints
//     {"FILE": ["error", ...]}.
//   node templates.mjs apply < JOB.json
//     JOB: {"diagram": IN, "out": OUT, "applications": [{"template": FILE, "element": ID,
//     "values": {NAME: VALUE}, "extra": {NAME: VALUE}}]}. For each application, apply the
//     template to the element and fill its form as a modeler would: camunda:modelerTemplate and
//     camunda:modelerTemplateVersion are set, and the element's camunda:properties become one
//     camunda:property per camunda:property binding of the template, in its order, holding
//     the value filled in, else the template's default, else "" (what Camunda Modeler writes).
//     Applying a template replaces the properties the element had, as Camunda Modeler does;
//     "extra" are then added as a modeler adds them in the Extension properties group.
//     Writes OUT and prints {"warnings": [...], "refused": {ID: {NAME: MESSAGE}}}: the values
//     the template's constraints refuse, with the message the modeler would see.
import { BpmnModdle } from 'bpmn-moddle';
import { validate } from '@bpmn-io/element-templates-validator';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const camunda = createRequire(import.meta.url)('camunda-bpmn-moddle/resources/camunda.json');

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

// The checks Camunda Modeler's properties panel makes on a field (notEmpty, then pattern).
function refusal(property, value) {
  const { notEmpty, pattern } = property.constraints || {};
  if (notEmpty && !value.trim()) {
    return 'Must not be empty.';
  }
  if (pattern) {
    const [regex, message] = typeof pattern === 'string' ? [pattern] : [pattern.value, pattern.message];
    if (!new RegExp(regex).test(value)) {
      return message || `Must match pattern ${regex}.`;
    }
  }
  return null;
}

function findElement(definitions, id) {
  const stack = [...definitions.rootElements];
  while (stack.length) {
    const element = stack.pop();
    if (element.id === id) {
      return element;
    }
    stack.push(...(element.flowElements || []));
  }
  throw new Error(`no element ${id}`);
}

function apply(moddle, element, template, values, extra) {
  if (!template.appliesTo.some((type) => element.$instanceOf(type))) {
    throw new Error(`template ${template.id} does not apply to ${element.$type} ${element.id}`);
  }
  const bindings = template.properties.filter((p) => p.binding.type === 'camunda:property');
  if (bindings.length !== template.properties.length) {
    throw new Error(`template ${template.id} has bindings this applier does not write`);
  }
  const known = new Set(bindings.map((p) => p.binding.name));
  const unknown = Object.keys(values).filter((name) => !known.has(name));
  if (unknown.length) {
    throw new Error(`template ${template.id} has no field for ${unknown.join(', ')}`);
  }
  element.set('camunda:modelerTemplate', template.id);
  element.set('camunda:modelerTemplateVersion', template.version);
  let extensionElements = element.get('extensionElements');
  if (!extensionElements) {
    extensionElements = moddle.create('bpmn:ExtensionElements', { values: [] });
    element.set('extensionElements', extensionElements);
  }
  let properties = extensionElements.get('values').find((v) => v.$instanceOf('camunda:Properties'));
  if (!properties) {
    properties = moddle.create('camunda:Properties', { values: [] });
    extensionElements.get('values').push(properties);
  }
  const refused = {};
  const written = bindings.map((property) => {
    const name = property.binding.name;
    const value = String(values[name] ?? property.value ?? '');
    const why = refusal(property, value);
    if (why) {
      refused[name] = why;
    }
    return moddle.create('camunda:Property', { name, value });
  });
  const added = Object.entries(extra).map(([name, value]) => moddle.create('camunda:Property', { name, value }));
  properties.set('values', [...written, ...added]);
  return refused;
}

const [mode, ...files] = process.argv.slice(2);
if (mode === 'validate') {
  const errors = Object.fromEntries(
    files.map((file) => [file, (validate(readJson(file)).errors || []).map((e) => e.message)])
  );
  process.stdout.write(JSON.stringify(errors));
} else if (mode === 'apply') {
  const job = JSON.parse(readFileSync(0, 'utf8'));
  const moddle = new BpmnModdle({ camunda });
  const { rootElement, warnings } = await moddle.fromXML(readFileSync(job.diagram, 'utf8'));
  const refused = {};
  for (const { template, element, values = {}, extra = {} } of job.applications) {
    const found = apply(moddle, findElement(rootElement, element), readJson(template), values, extra);
    if (Object.keys(found).length) {
      refused[element] = found;
    }
  }
  const { xml } = await moddle.toXML(rootElement, { format: true });
  writeFileSync(job.out, xml);
  process.stdout.write(JSON.stringify({ warnings: warnings.map((w) => w.message), refused }));
} else {
  process.stderr.write('usage: templates.mjs validate FILE... | apply < JOB.json\n');
  process.exit(2);
}
