// The frame with its boxes drawn in SVG on top, in the frame's own pixel coordinates, and the
// editor that lets a reviewer move the object's box and draw the boxes the detector missed.
//
// Mouse: drag a box to move it, drag its corner to resize, drag on empty frame to draw a new
// box (then pick its class). Keyboard: Tab selects the next box, arrows move it (Shift+arrows
// resize it), Delete removes an added box, Enter saves, Escape cancels.

import { className, svg, replace } from "./util.js";

const MIN_PX = 4;

export function cloneReview(state) {
  return {
    box: state.box ? [...state.box] : null,
    detectorBox: [...state.detectorBox],
    added: state.added.map((a) => ({ class_name: a.class_name, box: [...a.box] })),
    parts: Object.fromEntries(Object.entries(state.parts || {}).map(([k, v]) => [k, v ? [...v] : null])),
  };
}

/** Draw ``state`` (not editable) onto ``layer`` (an <svg> with the frame's viewBox). */
export function drawBoxes(layer, state, { detectorClass = "", selected = null } = {}) {
  const shapes = [];
  const rect = (box, cls, label, key) => {
    const [x1, y1, x2, y2] = box;
    const group = svg("g", { "data-key": key });
    group.append(svg("rect", { class: `box ${cls}${selected === key ? " chosen" : ""}`, x: x1, y: y1, width: x2 - x1, height: y2 - y1 }));
    if (label) group.append(svg("text", { class: "box-label", x: x1 + 4, y: Math.max(16, y1 - 6) }, label));
    shapes.push(group);
    return group;
  };
  if (state.box) rect(state.detectorBox, "detector", "", "detector");
  rect(state.box || state.detectorBox, state.box ? "reviewed" : "detector", detectorClass && className(detectorClass), "main");
  state.added.forEach((a, i) => rect(a.box, "added", className(a.class_name), `added-${i}`));
  for (const [name, box] of Object.entries(state.parts || {})) if (box) rect(box, "part", name, `part-${name}`);
  replace(layer, shapes);
}

function toFrame(layer, event) {
  const point = layer.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const p = point.matrixTransform(layer.getScreenCTM().inverse());
  return { x: p.x, y: p.y };
}

function clamp(box, w, h) {
  let [x1, y1, x2, y2] = box;
  [x1, x2] = [Math.min(x1, x2), Math.max(x1, x2)];
  [y1, y2] = [Math.min(y1, y2), Math.max(y1, y2)];
  return [Math.max(0, x1), Math.max(0, y1), Math.min(w, x2), Math.min(h, y2)].map((v) => Math.round(v * 10) / 10);
}

/**
 * Edit ``state`` on ``layer``. ``pickClass()`` resolves to a class name (or null) for a newly
 * drawn box. Resolves with the edited state on save, null on cancel.
 */
export function editBoxes(layer, state, { width, height, detectorClass, pickClass, partName = null, onChange = () => {} }) {
  const edit = cloneReview(state);
  let selected = partName ? `part-${partName}` : "main";
  let drag = null;
  const boxOf = (key) => {
    if (key === "main") return edit.box || edit.detectorBox;
    if (key.startsWith("added-")) return edit.added[Number(key.slice(6))]?.box;
    if (key.startsWith("part-")) return edit.parts[key.slice(5)];
    return null;
  };
  const setBox = (key, box) => {
    if (key === "main") edit.box = box;
    else if (key.startsWith("added-")) edit.added[Number(key.slice(6))].box = box;
    else if (key.startsWith("part-")) edit.parts[key.slice(5)] = box;
  };
  const keys = () => ["main", ...edit.added.map((_, i) => `added-${i}`), ...Object.keys(edit.parts).filter((k) => edit.parts[k]).map((k) => `part-${k}`)];

  const draw = () => {
    drawBoxes(layer, edit, { detectorClass, selected });
    const box = boxOf(selected);
    if (box) {
      const r = Math.max(width, height) / 110;
      for (const [cx, cy, corner] of [[box[0], box[1], "nw"], [box[2], box[1], "ne"], [box[0], box[3], "sw"], [box[2], box[3], "se"]]) {
        layer.append(svg("rect", { class: "handle", "data-corner": corner, x: cx - r, y: cy - r, width: 2 * r, height: 2 * r }));
      }
    }
    onChange(edit, selected);
  };

  const hit = (p) => {
    // The smallest box under the pointer wins, so a small added box inside a big one can be picked.
    const under = keys()
      .map((key) => ({ key, box: boxOf(key) }))
      .filter(({ box }) => box && p.x >= box[0] && p.x <= box[2] && p.y >= box[1] && p.y <= box[3])
      .sort((a, b) => (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) - (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]));
    return under[0]?.key || null;
  };

  const onDown = (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    const p = toFrame(layer, event);
    const corner = event.target.dataset?.corner;
    layer.setPointerCapture(event.pointerId);
    if (corner) {
      drag = { mode: "resize", corner, key: selected, start: p, box: [...boxOf(selected)] };
      return;
    }
    // Drawing a part (it lies inside the object's box): only the part itself can be grabbed.
    const under = hit(p);
    const key = partName ? (under === `part-${partName}` ? under : null) : under;
    if (key) {
      selected = key;
      drag = { mode: "move", key, start: p, box: [...boxOf(key)] };
      draw();
      return;
    }
    drag = { mode: "draw", start: p, box: [p.x, p.y, p.x, p.y] };
  };
  const onMove = (event) => {
    if (!drag) return;
    const p = toFrame(layer, event);
    const dx = p.x - drag.start.x;
    const dy = p.y - drag.start.y;
    let box = [...drag.box];
    if (drag.mode === "move") {
      const w = box[2] - box[0];
      const h = box[3] - box[1];
      const x1 = Math.max(0, Math.min(width - w, box[0] + dx));
      const y1 = Math.max(0, Math.min(height - h, box[1] + dy));
      setBox(drag.key, [x1, y1, x1 + w, y1 + h].map((v) => Math.round(v * 10) / 10));
    } else if (drag.mode === "resize") {
      if (drag.corner.includes("w")) box[0] += dx; else box[2] += dx;
      if (drag.corner.includes("n")) box[1] += dy; else box[3] += dy;
      setBox(drag.key, clamp(box, width, height));
    } else {
      box = clamp([drag.start.x, drag.start.y, p.x, p.y], width, height);
      drag.current = box;
      draw();
      const [x1, y1, x2, y2] = box;
      layer.append(svg("rect", { class: "box added", x: x1, y: y1, width: x2 - x1, height: y2 - y1 }));
      return;
    }
    draw();
  };

  return new Promise((resolve) => {
    const finish = (value) => {
      layer.removeEventListener("pointerdown", onDown);
      layer.removeEventListener("pointermove", onMove);
      layer.removeEventListener("pointerup", onUp);
      document.removeEventListener("keydown", onKey, true);
      resolve(value);
    };
    const onUp = async () => {
      if (!drag) return;
      const done = drag;
      drag = null;
      if (done.mode === "draw") {
        const box = done.current;
        if (partName && box && box[2] - box[0] >= MIN_PX && box[3] - box[1] >= MIN_PX) {
          // Drawing the attribute's part (e.g. the cargo bed): it replaces the part's box.
          edit.parts[partName] = box;
          selected = `part-${partName}`;
        } else if (box && box[2] - box[0] >= MIN_PX && box[3] - box[1] >= MIN_PX) {
          const name = await pickClass();
          if (name) {
            edit.added.push({ class_name: name, box });
            selected = `added-${edit.added.length - 1}`;
          }
        }
      }
      draw();
    };
    const onKey = (event) => {
      if (document.getElementById("overlay").hidden === false) return; // a class picker is open
      const step = event.altKey ? 1 : Math.max(2, Math.round(Math.max(width, height) / 100));
      const arrows = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        finish(null);
      } else if (event.key === "Enter") {
        event.preventDefault();
        event.stopPropagation();
        finish(edit);
      } else if (event.key === "Tab") {
        event.preventDefault();
        event.stopPropagation();
        const all = keys();
        selected = all[(all.indexOf(selected) + (event.shiftKey ? all.length - 1 : 1)) % all.length];
        draw();
      } else if ((event.key === "Delete" || event.key === "Backspace") && selected.startsWith("added-")) {
        event.preventDefault();
        event.stopPropagation();
        edit.added.splice(Number(selected.slice(6)), 1);
        selected = "main";
        draw();
      } else if (arrows[event.key]) {
        event.preventDefault();
        event.stopPropagation();
        const [dx, dy] = arrows[event.key];
        const current = boxOf(selected);
        if (!current) return; // nothing drawn yet to move
        const box = [...current];
        if (event.shiftKey) {
          box[2] += dx;
          box[3] += dy;
        } else {
          box[0] += dx; box[2] += dx; box[1] += dy; box[3] += dy;
        }
        if (box[0] >= 0 && box[1] >= 0 && box[2] <= width && box[3] <= height && box[2] - box[0] >= MIN_PX && box[3] - box[1] >= MIN_PX) setBox(selected, box);
        draw();
      }
    };
    layer.addEventListener("pointerdown", onDown);
    layer.addEventListener("pointermove", onMove);
    layer.addEventListener("pointerup", onUp);
    document.addEventListener("keydown", onKey, true);
    draw();
  });
}
