// Read a BPMN file and write it again as bpmn.io / Camunda Modeler would save it.
import { BpmnModdle } from 'bpmn-moddle';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const camunda = createRequire(import.meta.url)('camunda-bpmn-moddle/resources/camunda.json');
const moddle = new BpmnModdle({ camunda });
const { rootElement, warnings } = await moddle.fromXML(readFileSync(process.argv[2], 'utf8'));
const { xml } = await moddle.toXML(rootElement, { format: true });
writeFileSync(process.argv[3], xml);
process.stdout.write(JSON.stringify({ warnings: warnings.map((w) => w.message) }));
