// Positions on a map drawn in SVG, with no network: Web Mercator, a faint grid, a scale bar.
// When the server configures a tile URL (a city tile server), tiles are drawn underneath.

import { choose } from "./dialogs.js";
import { svg } from "./util.js";

const TILE = 256;
/** Clickable dots closer than this (map units) would hide each other: they are drawn as one. */
const STACK_PX = 8;
const EARTH_M_PER_PX_Z0 = 156543.03392; // metres per pixel at zoom 0 on the equator

function project(lat, lon, zoom) {
  const scale = TILE * 2 ** zoom;
  const sin = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return {
    x: ((lon + 180) / 360) * scale,
    y: (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * scale,
  };
}

function unproject(x, y, zoom) {
  const scale = TILE * 2 ** zoom;
  const lon = (x / scale) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / scale;
  const lat = (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)));
  return { lat, lon };
}

/** The zoom that shows every point with a margin, at most ``maxZoom`` (about 150 m across). */
function fitZoom(points, width, height, maxZoom = 18) {
  for (let zoom = maxZoom; zoom > 1; zoom--) {
    const xy = points.map((p) => project(p.lat, p.lon, zoom));
    const w = Math.max(...xy.map((p) => p.x)) - Math.min(...xy.map((p) => p.x));
    const h = Math.max(...xy.map((p) => p.y)) - Math.min(...xy.map((p) => p.y));
    if (w <= width - 40 && h <= height - 40) return zoom;
  }
  return 2;
}

function niceMetres(maxMetres) {
  const base = 10 ** Math.floor(Math.log10(maxMetres));
  for (const step of [5, 2, 1]) if (step * base <= maxMetres) return step * base;
  return base;
}

/** Metres east and north from ``a`` to ``b`` ({lat, lon}): flat at street scale. */
export function metresEastNorth(a, b) {
  const rad = Math.PI / 180;
  return { east: (b.lon - a.lon) * 111320 * Math.cos(a.lat * rad), north: (b.lat - a.lat) * 111320 };
}

/**
 * Draw ``points`` ([{lat, lon, kind, title}]) into a new <svg>. ``kind`` "case" is the case's
 * place, "event" an observation. ``onArea(bbox)``: let the user drag a rectangle to pick an area.
 * ``areas`` ([{title, polygons}], polygons as GeoJSON MultiPolygon coordinates) are drawn under the
 * points where they reach into the map (the no-sign zones around a sign).
 */
export function drawMap(points, { width = 300, height = 200, tiles = null, onArea = null, label = "Map", areas = [] } = {}) {
  const root = svg("svg", { class: "map", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  const placed = points.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
  if (!placed.length) {
    root.append(svg("text", { x: 10, y: height / 2 }, "No position reported."));
    return root;
  }
  const zoom = fitZoom(placed, width, height);
  const xs = placed.map((p) => project(p.lat, p.lon, zoom));
  const cx = (Math.max(...xs.map((p) => p.x)) + Math.min(...xs.map((p) => p.x))) / 2;
  const cy = (Math.max(...xs.map((p) => p.y)) + Math.min(...xs.map((p) => p.y))) / 2;
  const left = cx - width / 2;
  const top = cy - height / 2;

  if (tiles && tiles.url) {
    const first = { x: Math.floor(left / TILE), y: Math.floor(top / TILE) };
    const last = { x: Math.floor((left + width) / TILE), y: Math.floor((top + height) / TILE) };
    for (let tx = first.x; tx <= last.x; tx++) {
      for (let ty = first.y; ty <= last.y; ty++) {
        const href = tiles.url.replace("{z}", zoom).replace("{x}", tx).replace("{y}", ty).replace("{s}", "a");
        root.append(svg("image", { href, x: tx * TILE - left, y: ty * TILE - top, width: TILE, height: TILE }));
      }
    }
  } else {
    // A map box of another shape than the view box shows bands beside it: the grid reaches into them.
    const step = TILE / 4;
    const bandX = Math.ceil(width / step) * step; // whole steps, so the lines stay on the grid
    const bandY = Math.ceil(height / step) * step;
    for (let gx = step - (left % step) - bandX; gx < 2 * width; gx += step) root.append(svg("line", { class: "grid", x1: gx, y1: -height, x2: gx, y2: 2 * height }));
    for (let gy = step - (top % step) - bandY; gy < 2 * height; gy += step) root.append(svg("line", { class: "grid", x1: -width, y1: gy, x2: 2 * width, y2: gy }));
  }

  for (const area of areas) {
    const rings = area.polygons.flat().map((ring) => ring.map(([lon, lat]) => project(lat, lon, zoom)));
    const all = rings.flat();
    const inView = Math.max(...all.map((q) => q.x)) >= left && Math.min(...all.map((q) => q.x)) <= left + width
      && Math.max(...all.map((q) => q.y)) >= top && Math.min(...all.map((q) => q.y)) <= top + height;
    if (!inView) continue;
    const d = rings.map((ring) => `M${ring.map((q) => `${(q.x - left).toFixed(1)} ${(q.y - top).toFixed(1)}`).join(" L")} Z`).join(" ");
    const shape = svg("path", { class: "zone", d, "fill-rule": "evenodd" });
    if (area.title) shape.append(svg("title", {}, area.title));
    root.append(shape);
  }

  // Clickable dots of one kind that would cover each other (other cases at one place) become one
  // dot with their count; a click on it asks which. Otherwise only the top one could be clicked.
  const stacks = [];
  placed.forEach((p, i) => {
    const at = { x: xs[i].x - left, y: xs[i].y - top };
    const under = p.onclick ? stacks.find((s) => s.kind === p.kind && s.onclick && Math.hypot(s.x - at.x, s.y - at.y) < STACK_PX) : null;
    if (under) under.points.push(p);
    else stacks.push({ ...at, kind: p.kind, onclick: p.onclick, points: [p] });
  });
  for (const stack of stacks) {
    const [first] = stack.points;
    const many = stack.points.length > 1;
    // The case is a ring drawn last: always seen, and the dots it rings (its camera, a duplicate
    // case at the same place) show through it and take the clicks (CSS: pointer-events none).
    const dot = svg("circle", { class: `${stack.kind}${many ? " stacked" : ""}`, cx: stack.x, cy: stack.y, r: stack.kind === "case" ? 7 : many ? 6 : 4 });
    const title = many ? `${stack.points.length} here: ${stack.points.map((p) => p.title).join("; ")}` : first.title;
    if (title) dot.append(svg("title", {}, title));
    if (many) {
      dot.addEventListener("click", async () => {
        const picked = await choose(`${stack.points.length} at this place`, stack.points.map((p, k) => ({ value: String(k), label: p.title || `point ${k + 1}` })));
        if (picked !== null && picked !== undefined) stack.points[Number(picked)].onclick();
      });
    } else if (first.onclick) {
      dot.addEventListener("click", first.onclick);
    }
    root.append(dot);
    if (many) root.append(svg("text", { class: "stack-count", x: stack.x, y: stack.y + 3, "text-anchor": "middle" }, String(stack.points.length)));
  }

  // Scale bar: a round distance no longer than a third of the map.
  const lat = unproject(cx, cy, zoom).lat;
  const metresPerPx = (EARTH_M_PER_PX_Z0 * Math.cos((lat * Math.PI) / 180)) / 2 ** zoom;
  const metres = niceMetres((width / 3) * metresPerPx);
  const px = metres / metresPerPx;
  const y0 = height - 12;
  root.append(
    svg("path", { class: "scale", d: `M10 ${y0 - 5} V${y0} H${10 + px} V${y0 - 5}` }),
    svg("text", { x: 14 + px, y: y0, class: "scale-label" }, metres >= 1000 ? `${metres / 1000} km` : `${metres} m`),
  );
  if (tiles && tiles.attribution) root.append(svg("text", { class: "attribution", x: width - 4, y: height - 3, "text-anchor": "end" }, tiles.attribution));

  if (onArea) enableAreaPick(root, { left, top, zoom, width, height }, onArea);
  return root;
}

function enableAreaPick(root, view, onArea) {
  let start = null;
  const rect = svg("rect", { class: "area", x: 0, y: 0, width: 0, height: 0, fill: "rgba(31,78,121,.15)", stroke: "#1f4e79" });
  root.append(rect);
  // Pointer to map units through the drawn transform: the map box may have another shape than
  // its view box (the map is then centred in it), so scaling each axis by the box is not enough.
  const local = (event) => {
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(root.getScreenCTM().inverse());
    return { x: point.x, y: point.y };
  };

  root.style.userSelect = "none"; // a drag draws the area; it must not select the page's text
  root.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    start = local(event);
    root.setPointerCapture(event.pointerId);
  });
  root.addEventListener("pointermove", (event) => {
    if (!start) return;
    const p = local(event);
    rect.setAttribute("x", Math.min(start.x, p.x));
    rect.setAttribute("y", Math.min(start.y, p.y));
    rect.setAttribute("width", Math.abs(p.x - start.x));
    rect.setAttribute("height", Math.abs(p.y - start.y));
  });
  root.addEventListener("pointerup", (event) => {
    if (!start) return;
    const p = local(event);
    const a = unproject(view.left + Math.min(start.x, p.x), view.top + Math.max(start.y, p.y), view.zoom);
    const b = unproject(view.left + Math.max(start.x, p.x), view.top + Math.min(start.y, p.y), view.zoom);
    start = null;
    if (Math.abs(a.lon - b.lon) > 0 && Math.abs(a.lat - b.lat) > 0) onArea([a.lon, a.lat, b.lon, b.lat]);
  });
}
