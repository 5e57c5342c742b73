// bpmn-js draws the icons of its align and distribute menu (and of the context pad's entry
// that opens it) as SVG markup whose shapes carry style attributes. The pages' policy
// (style-src 'self', no 'unsafe-inline') refuses those attributes: the browser logs a
// violation for each shape and draws the icons as black blocks. This module takes the
// attributes out of the markup before it reaches the page, and modeler.css draws the shapes
// as bpmn-js meant them, so the policy stays strict.

const LAST = 1; // run after bpmn-js's own providers (default priority 1000)

export function unstyled(markup) {
  return typeof markup === 'string' ? markup.replace(/\sstyle\s*=\s*("[^"]*"|'[^']*')/g, '') : markup;
}

function withoutStyles(entries, key) {
  const out = {};
  for (const [id, entry] of Object.entries(entries)) {
    out[id] = entry && typeof entry[key] === 'string' ? { ...entry, [key]: unstyled(entry[key]) } : entry;
  }
  return out;
}

function UnstyledIcons(popupMenu, contextPad) {
  popupMenu.registerProvider('align-elements', LAST, {
    getPopupMenuEntries: () => (entries) => withoutStyles(entries, 'imageHtml'),
  });
  contextPad.registerProvider(LAST, {
    getContextPadEntries: () => (entries) => withoutStyles(entries, 'html'),
    getMultiElementContextPadEntries: () => (entries) => withoutStyles(entries, 'html'),
  });
}

UnstyledIcons.$inject = ['popupMenu', 'contextPad'];

export default {
  __init__: ['unstyledIcons'],
  unstyledIcons: ['type', UnstyledIcons],
};
