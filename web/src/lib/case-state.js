// What the case page's modules share: the case's address (from the page's own), the roles
// of whoever is signed in and so what they may do, the case as last loaded, and loading it
// again (case.js registers how: reading the case and its timeline, then redrawing the page).

const caseId = decodeURIComponent(window.location.pathname.split('/')[2] || '');
export const casePath = `/cases/${encodeURIComponent(caseId)}`;
const roles = new Set(
  (document.querySelector('meta[name="pathway-roles"]')?.getAttribute('content') || '')
    .split(/\s+/)
    .filter(Boolean),
);

export let current = null; // the case as last loaded: { data, timeline }
let loader = null;

export function setCurrent(loaded) {
  current = loaded;
}

export function mayAct(role) {
  if (roles.has('admin') || !role) return true;
  return role.split(',').some((one) => roles.has(one.trim()));
}

// Load the case again and redraw the page (options as case.js's load takes them).
export function load(options) {
  return loader(options);
}

export function setLoader(load) {
  loader = load;
}
