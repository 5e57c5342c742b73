// The case diagram: bpmn-js's NavigatedViewer (pan and zoom, no editing), reading the
// Camunda extensions (form fields, pathway.* properties) into the diagram's business objects.
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';

export function createViewer({ container }) {
  return new NavigatedViewer({ container, moddleExtensions: { camunda: camundaModdle } });
}
