// The case diagram for a later page: bpmn-js's NavigatedViewer (pan and zoom, no editing).
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';

export function createViewer({ container }) {
  return new NavigatedViewer({ container });
}
