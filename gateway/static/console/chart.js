// Daily matches as an inline SVG bar chart, from Statistics records (days are UTC).

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 400;
const HEIGHT = 150;
const LEFT = 34; // room for the count labels
const BOTTOM = 22; // room for the date labels
const TOP = 8;

// The last ``count`` days to today, as Statistics writes them (yyyyMMdd, UTC).
export function lastDays(count) {
  const today = Date.now();
  return Array.from({ length: count }, (_, i) =>
    new Date(today - (count - 1 - i) * 86400000).toISOString().slice(0, 10).replaceAll("-", ""));
}

// [{date, count}] for each of ``days``: the records' counts summed by day.
export function dailyTotals(records, days) {
  const sums = new Map(days.map((d) => [d, 0]));
  for (const r of records) {
    if (sums.has(r.date)) sums.set(r.date, sums.get(r.date) + r.count);
  }
  return days.map((date) => ({ date, count: sums.get(date) }));
}

export function dayLabel(date) {
  const day = new Date(Date.UTC(+date.slice(0, 4), +date.slice(4, 6) - 1, +date.slice(6, 8)));
  return day.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

function element(name, attributes, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Draw ``totals`` into ``svg``; answers a sentence that says what the chart shows.
export function drawChart(svg, totals) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  const top = Math.max(1, ...totals.map((t) => t.count));
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const step = (WIDTH - LEFT) / totals.length;
  const baseline = HEIGHT - BOTTOM;
  for (const [value, y] of [[0, baseline], [top, TOP]]) {
    svg.append(element("line", { x1: LEFT, x2: WIDTH, y1: y, y2: y, class: "grid" }));
    svg.append(element("text", { x: LEFT - 6, y: y + 4, class: "count" }, String(value)));
  }
  totals.forEach(({ date, count }, i) => {
    const height = (count / top) * plotHeight;
    const bar = element("rect", {
      x: LEFT + i * step + step * 0.1, y: baseline - height,
      width: step * 0.8, height, class: "bar", "data-date": date, "data-count": count,
    });
    bar.append(element("title", {}, `${dayLabel(date)}: ${count} match${count === 1 ? "" : "es"}`));
    svg.append(bar);
  });
  const last = totals.length - 1;
  for (const [i, anchor] of [[0, "start"], [Math.floor(last / 2), "middle"], [last, "end"]]) {
    const x = anchor === "start" ? LEFT : anchor === "end" ? WIDTH : LEFT + (i + 0.5) * step;
    svg.append(element("text", { x, y: HEIGHT - 6, "text-anchor": anchor, class: "day" },
      dayLabel(totals[i].date)));
  }
  const sum = totals.reduce((s, t) => s + t.count, 0);
  if (sum === 0) return `No matches in the last ${totals.length} days.`;
  const best = totals.reduce((a, b) => (b.count > a.count ? b : a));
  return `${sum} match${sum === 1 ? "" : "es"} in the last ${totals.length} days, ` +
    `most on ${dayLabel(best.date)} (${best.count}).`;
}
