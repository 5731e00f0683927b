import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BAR_COLORS, clip, contrastRatio, renderChart, wrapText } from './chart.ts';
import { logAxisTicks, ninesX, renderLatencyChart, SERIES_COLORS, seriesStyle } from './chart-latency.ts';
import { renderTimeline, spans, type TimelineRun, type TimelineSpec } from './chart-timeline.ts';
import { CURVE_PERCENTILES, percentileCurve, summarize } from './latency.mjs';

/** Every number in the SVG's attributes is finite: no NaN or Infinity leaked into a coordinate. */
function assertFiniteCoordinates(svg: string): void {
  assert.doesNotMatch(svg, /NaN|Infinity/);
}

/** The SVG's visible texts (element text, tspans included), in order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>(.*?)<\/text>/g)].map((m) =>
    (m[1] as string).replace(/<title>.*?<\/title>/g, '').replace(/<[^>]+>/g, ' '),
  );
}

describe('latency curve (latency.mjs)', () => {
  it('keeps the percentiles the sample resolves, then the max; exact, nearest rank', () => {
    const sorted = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
    const curve = percentileCurve(sorted);
    const asMap = new Map(curve);
    assert.equal(asMap.get(0), 1);
    assert.equal(asMap.get(50), 500);
    assert.equal(asMap.get(99), 990);
    assert.equal(asMap.get(99.9), 999, 'p99.9 of 1000: one value beyond it');
    assert.equal(asMap.has(99.95), false, 'p99.95 needs 2000 values');
    assert.deepEqual(curve.at(-1), [100, 1000]);
    assert.ok(curve.length <= CURVE_PERCENTILES.length + 1, 'bounded');
    for (let i = 1; i < curve.length; i++)
      assert.ok((curve[i] as number[])[0]! > (curve[i - 1] as number[])[0]!);
  });

  it('an empty sample has no curve; one value is its min and max', () => {
    assert.deepEqual(percentileCurve([]), []);
    assert.deepEqual(percentileCurve([2.5]), [
      [0, 2.5],
      [100, 2.5],
    ]);
  });

  it('summarize carries the curve with the summary', () => {
    const lat = new Float64Array([3, 1, 2, 4, 0]);
    const s = summarize(lat, 4, 2);
    assert.equal(s.requests, 4);
    assert.equal(s.p50Ms, 2);
    assert.deepEqual(s.percentiles.at(0), [0, 1]);
    assert.deepEqual(s.percentiles.at(-1), [100, 4]);
  });
});

describe('chart helpers', () => {
  it('wraps and clips text', () => {
    assert.deepEqual(wrapText('a bb ccc dddd', 6), ['a bb', 'ccc…']);
    assert.deepEqual(wrapText('short', 10), ['short']);
    assert.deepEqual(wrapText('x'.repeat(30), 10, 2), [`${'x'.repeat(9)}…`]);
    assert.equal(clip('abcdef', 4), 'abc…');
    assert.equal(clip('abc', 4), 'abc');
  });

  it('nines axis and log ticks', () => {
    assert.equal(ninesX(0), 0);
    assert.ok(Math.abs(ninesX(99) - 2) < 1e-9);
    assert.ok(Math.abs(ninesX(99.9) - 3) < 1e-9);
    assert.equal(ninesX(100, 1000), 3);
    assert.equal(ninesX(100, 1), 0);
    assert.ok(Number.isNaN(ninesX(100)));
    assert.deepEqual(logAxisTicks(0.04, 249), [0.01, 0.1, 1, 10, 100, 1000]);
    assert.deepEqual(logAxisTicks(1.5, 1.5), [1, 2]);
    assert.deepEqual(logAxisTicks(0.3, 4), [0.2, 0.5, 1, 2, 5]);
  });

  it('gives every line its own colour, dash and marker among the first eight', () => {
    const styles = Array.from({ length: 8 }, (_, i) => seriesStyle(i));
    assert.equal(new Set(styles.map((s) => s.color)).size, 8);
    assert.equal(new Set(styles.map((s) => `${s.dash}|${s.marker}`)).size, 4);
  });
});

describe('latency chart', () => {
  const curve = (base: number, n: number) =>
    percentileCurve(Float64Array.from({ length: n }, (_, i) => base * (1 + i / n) ** 3).sort());

  it('draws one line per measured side with a legend, n/a for the others, title and desc', () => {
    const svg = renderLatencyChart({
      title: 'S1 <latency> & more',
      subtitle: 'a machine',
      panels: [
        {
          title: 'closed loop, 50 connections',
          series: [
            { label: 'floor', note: 'node:http', percentiles: curve(0.5, 20_000), requests: 20_000 },
            { label: 'kserve', note: 'n/a: not installed' },
            { label: 'ferry', percentiles: curve(0.8, 5000), requests: 5000 },
          ],
        },
      ],
    });
    assert.match(
      svg,
      /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* role="img" aria-labelledby="chart-title chart-desc"/,
    );
    assert.match(svg, /<title id="chart-title">S1 &lt;latency&gt; &amp; more<\/title>/);
    assert.match(
      svg,
      /<desc id="chart-desc">[^<]*floor \(node:http\) p50 [\d.]+ · p99 [\d.]+ · max [\d.]+ ms, n=20,000/,
    );
    assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
    assert.ok(texts(svg).some((t) => t.trim() === 'n/a'));
    assert.ok(texts(svg).some((t) => t.includes('latency, ms (log scale)')));
    assert.ok(texts(svg).some((t) => t.includes('percentile')));
    for (const tick of ['min', 'p50', 'p90', 'p99', 'p99.9', 'p99.99'])
      assert.ok(texts(svg).includes(tick), tick);
    assertFiniteCoordinates(svg);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
  });

  it('copes with a single point, all-equal values, nothing measured and very long names', () => {
    const long = 'ferry-batching-with-a-name-far-too-long-for-any-legend-at-all-really';
    const svg = renderLatencyChart({
      title: `${'a very long title '.repeat(12)}end`,
      panels: [
        {
          title: 'edge cases',
          series: [
            { label: 'one', percentiles: percentileCurve([3]), requests: 1 },
            { label: 'equal', percentiles: percentileCurve(new Array(500).fill(1.5)), requests: 500 },
            {
              label: long,
              note: 'a note that is long as well, and longer still',
              percentiles: curve(1, 100),
            },
          ],
        },
      ],
    });
    assertFiniteCoordinates(svg);
    // The single point gets a marker even though it has no line to speak of.
    assert.match(svg, /<polyline points="[\d.]+,[\d.]+ [\d.]+,[\d.]+"/);
    // The long name is clipped on screen, whole in its tooltip and in the description.
    assert.ok(texts(svg).some((t) => t.includes(clip(long, 41))));
    assert.ok(svg.includes(`<title>${long}, a note`));
    // The title wraps onto two lines, the second ending in an ellipsis; none runs off the 980 px width.
    const titleLines = [
      ...svg.matchAll(/<text x="12" y="\d+" font-size="16" font-weight="bold">(.*?)<\/text>/g),
    ];
    assert.equal(titleLines.length, 2);
    assert.ok(String(titleLines[1]?.[1]).endsWith('…'));
    for (const m of titleLines) assert.ok((m[1] as string).length <= 100);

    const none = renderLatencyChart({ title: 'nothing', panels: [{ title: 'p', series: [{ label: 'x' }] }] });
    assertFiniteCoordinates(none);
    assert.equal((none.match(/<polyline /g) ?? []).length, 0);
    assert.ok(texts(none).some((t) => t.includes('n/a: not measured')));
    assert.throws(() => renderLatencyChart({ title: 't', panels: [] }), /no panel/);
  });

  it('stacks panels that share the latency axis', () => {
    const svg = renderLatencyChart({
      title: 'two',
      panels: [
        { title: 'panel A', series: [{ label: 'a', percentiles: curve(0.1, 1000), requests: 1000 }] },
        { title: 'panel B', series: [{ label: 'b', percentiles: curve(100, 1000), requests: 1000 }] },
      ],
    });
    const labels = texts(svg);
    assert.ok(labels.includes('panel A') && labels.includes('panel B'));
    // One shared axis: the same tick labels in both panels, from 0.1 ms to 1k.
    assert.equal(labels.filter((t) => t === '1k').length, 2);
    assert.equal(labels.filter((t) => t === '0.1').length, 2);
  });
});

describe('bar chart accessibility', () => {
  it('has a title and a description with every row, and clips a label too long for its column', () => {
    const long = 'a-server-name-that-does-not-fit-the-label-column';
    const svg = renderChart({
      title: 'S1',
      rows: [
        { label: long, rps: 1000, p50Ms: 1, p99Ms: 2 },
        { label: 'kserve', note: 'n/a: not installed' },
      ],
    });
    assert.match(svg, /role="img" aria-labelledby="chart-title chart-desc"/);
    assert.match(svg, /<title id="chart-title">S1<\/title>/);
    assert.match(
      svg,
      new RegExp(
        `<desc id="chart-desc">.*${long}: 1,000 \\(throughput, req/s\\), p50 1\\.00 ms, p99 2\\.00 ms; kserve \\(n/a: not installed\\): throughput n/a`,
      ),
    );
    assert.ok(texts(svg).includes(clip(long, 27)));
    assertFiniteCoordinates(svg);
  });
});

describe('autoscale timeline chart', () => {
  const run = (over: Partial<TimelineRun> = {}): TimelineRun => ({
    label: 'ferry',
    note: '0 failed',
    ready: [
      [0, 1],
      [5, 3],
    ],
    desired: [
      [0, 1],
      [4, 3],
    ],
    failed: [0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
    held: [0, 0, 0, 7, 0, 0, 0, 0, 0, 0],
    sloViolated: [false, false, true, true, false, false, false, false, false, false],
    ...over,
  });
  const spec = (runs: TimelineRun[], over: Partial<TimelineSpec> = {}): TimelineSpec => ({
    title: 'autoscale step',
    durationS: 10,
    offered: [
      [0, 100],
      [4, 100],
      [4, 400],
      [10, 400],
    ],
    arrivals: [98, 101, 99, 102, 400, 398, 401, 400, 399, 402],
    needed: [
      [0, 1],
      [4, 5],
    ],
    steps: [{ atS: 4, label: '4x up' }],
    slo: 'p99 > 150 ms',
    runs,
    ...over,
  });

  it('draws the load, and per policy replicas, SLO bands, held and failed strips, with title and desc', () => {
    const svg = renderTimeline(spec([run(), run({ label: 'kpa-default', held: null, failed: null })]));
    assert.match(svg, /role="img"/);
    assert.match(svg, /<title id="chart-title">autoscale step<\/title>/);
    assert.match(
      svg,
      /<desc id="chart-desc">[^<]*ferry \(0 failed\): peak 3 desired, 3 ready; 2 failed; at most 7 held at once; 2 s over the SLO/,
    );
    assert.match(svg, /kpa-default[^<]*: peak 3 desired, 3 ready; failures not recorded; held not recorded/);
    const t = texts(svg);
    for (const s of [
      'offered load',
      'req/s',
      'replicas',
      'held',
      'failed/s',
      '4x up',
      'max 7',
      '2 in all',
      'SLO missed (p99 &gt; 150 ms)',
    ])
      assert.ok(
        t.some((x) => x.includes(s)),
        s,
      );
    assert.equal(t.filter((x) => x === 'not recorded').length, 2, 'held and failed of the run without them');
    // One SLO band (seconds 2-3 merged) for each run that has it.
    assert.equal((svg.match(/fill="#f6d3cf"\/>/g) ?? []).length, 2 + 1, 'two bands and the legend swatch');
    assertFiniteCoordinates(svg);
  });

  it('copes with one point, all-equal values, empty series, no runs and very long names', () => {
    const long = `policy-${'x'.repeat(80)}`;
    const svg = renderTimeline(
      spec(
        [
          run({ ready: [[0, 2]], desired: [[0, 2]], failed: [], held: [], sloViolated: [] }),
          run({ label: long, note: 'n'.repeat(300), ready: [], desired: [] }),
        ],
        {
          durationS: 1,
          offered: [[0, 50]],
          arrivals: [50],
          needed: [[0, 2]],
          steps: [{ atS: 5, label: 'late' }],
        },
      ),
    );
    assertFiniteCoordinates(svg);
    const t = texts(svg);
    assert.ok(t.some((x) => x.startsWith(clip(long, 30))));
    assert.ok(!t.some((x) => x.includes('late')), 'a step past the end is not drawn');
    assert.ok(svg.includes(`<title>${long}, ${'n'.repeat(300)}</title>`));
    assertFiniteCoordinates(renderTimeline(spec([], { offered: [], arrivals: null, needed: [] })));
    assert.throws(() => renderTimeline(spec([], { durationS: 0 })), /durationS must be > 0/);
  });

  it('merges consecutive seconds into spans', () => {
    assert.deepEqual(spans([true, true, false, true]), [
      [0, 2],
      [3, 4],
    ]);
    assert.deepEqual(spans([]), []);
  });
});

describe('chart colours', () => {
  it('are readable on white: lines and bars >= 3:1, grey text and white labels in bars >= 4.5:1', () => {
    assert.equal(contrastRatio('#000000', '#ffffff'), 21);
    for (const c of SERIES_COLORS)
      assert.ok(contrastRatio(c, '#ffffff') >= 3, `${c}: ${contrastRatio(c, '#ffffff')}`);
    for (const c of [BAR_COLORS.rps, BAR_COLORS.p50, BAR_COLORS.p99])
      assert.ok(contrastRatio('#ffffff', c) >= 4.5, `white on ${c}: ${contrastRatio('#ffffff', c)}`);
    for (const c of [BAR_COLORS.axis, BAR_COLORS.muted])
      assert.ok(contrastRatio(c, '#ffffff') >= 4.5, `${c}: ${contrastRatio(c, '#ffffff')}`);
    assert.throws(() => contrastRatio('red', '#fff'), /not a #rrggbb/);
  });
});
