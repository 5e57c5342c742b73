// Draw every plane of a diagram the way bpmn.io does (bpmn-js's viewer in headless
// Chromium, no network) and save one picture per plane: OUTDIR/plane-<id>.png.
//
//   node tests/bpmnio/render.mjs bpmn/lumbar_radiculopathy.bpmn docs/images
//
// It prints, as JSON, each plane's picture and the labels whose text bpmn.io draws beyond
// the label bounds the file gives (so a layout check made from those bounds would miss it),
// and exits 1 when there is one. CHROMIUM names the browser (default /usr/bin/chromium).
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const [diagram, outDir] = process.argv.slice(2);
if (!diagram || !outDir) {
  console.error('usage: node render.mjs DIAGRAM.bpmn OUTDIR');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const asset = (name) => require.resolve(`bpmn-js/dist/${name}`);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--font-render-hinting=none'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800, deviceScaleFactor: 1 });
  await page.setContent(
    '<!doctype html><html><body style="margin:0"><div id="canvas"></div></body></html>'
  );
  for (const css of ['assets/diagram-js.css', 'assets/bpmn-js.css']) {
    await page.addStyleTag({ path: asset(css) });
  }
  await page.addStyleTag({ content: '#canvas { position: absolute; inset: 0; background: white; }' });
  await page.addScriptTag({ path: asset('bpmn-viewer.production.min.js') });

  const planes = await page.evaluate(async (xml) => {
    window.viewer = new window.BpmnJS({ container: '#canvas' });
    const { warnings } = await window.viewer.importXML(xml);
    if (warnings.length) throw new Error(warnings.map((w) => w.message).join('\n'));
    return window.viewer.get('canvas').getRootElements().map((root) => root.id);
  }, readFileSync(diagram, 'utf8'));

  mkdirSync(outDir, { recursive: true });
  const report = { diagram, planes: [], overflowing: [] };
  for (const rootId of planes) {
    const plane = await page.evaluate((rootId) => {
      const canvas = window.viewer.get('canvas');
      const registry = window.viewer.get('elementRegistry');
      const root = canvas.findRoot(rootId);
      canvas.setRootElement(root);
      canvas.scroll({ dx: -canvas.viewbox().x, dy: -canvas.viewbox().y });
      const elements = registry.filter((e) => e !== root && canvas.findRoot(e) === root);
      let right = 0;
      let bottom = 0;
      const overflowing = [];
      for (const e of elements) {
        const points = e.waypoints || [
          { x: e.x, y: e.y },
          { x: e.x + e.width, y: e.y + e.height },
        ];
        for (const p of points) {
          right = Math.max(right, p.x);
          bottom = Math.max(bottom, p.y);
        }
        const text = e.type === 'label' && registry.getGraphics(e).querySelector('text');
        if (text) {
          // The text as drawn, in diagram coordinates, against the label's bounds.
          const b = text.getBBox();
          const drawn = { x: e.x + b.x, y: e.y + b.y, width: b.width, height: b.height };
          if (
            drawn.x < e.x - 1 ||
            drawn.y < e.y - 1 ||
            drawn.x + drawn.width > e.x + e.width + 1 ||
            drawn.y + drawn.height > e.y + e.height + 1
          ) {
            overflowing.push({
              id: e.labelTarget.id,
              bounds: { x: e.x, y: e.y, width: e.width, height: e.height },
              drawn,
            });
          }
        }
      }
      const crumbs = document.querySelector('.bjs-breadcrumbs');
      const crumbBox = crumbs && crumbs.offsetParent ? crumbs.getBoundingClientRect() : null;
      const id = root.businessObject.id;
      return {
        id,
        width: Math.ceil(right + 60),
        height: Math.ceil(bottom + 60),
        breadcrumb: crumbBox && {
          x: crumbBox.x,
          y: crumbBox.y,
          width: crumbBox.width,
          height: crumbBox.height,
        },
        overflowing,
      };
    }, rootId);
    await page.setViewport({ width: plane.width, height: plane.height, deviceScaleFactor: 1 });
    const file = join(outDir, `plane-${plane.id}.png`);
    await page.screenshot({ path: file });
    report.planes.push({ id: plane.id, file, width: plane.width, height: plane.height,
      breadcrumb: plane.breadcrumb });
    report.overflowing.push(...plane.overflowing);
  }
  console.log(JSON.stringify(report, null, 2));
  process.exitCode = report.overflowing.length ? 1 : 0;
} finally {
  await browser.close();
}
