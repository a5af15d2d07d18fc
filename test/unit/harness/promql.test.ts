import { describe, expect, it } from 'vitest';
import { exportedNames, metricNamesIn } from '../../harness/promql.js';

describe('metricNamesIn (the PromQL tokenizer of the dashboard/alert test)', () => {
  it('finds metric names and skips functions, aggregations, label lists, matchers, ranges and keywords', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.95, sum by (le, provider_name) (rate(oidc_operator_provider_request_duration_seconds_bucket{job="x",status=~"5..|error"}[$__rate_interval])))',
      ),
    ).toEqual(['oidc_operator_provider_request_duration_seconds_bucket']);
    expect(
      metricNamesIn(
        'max by (pod) (a_total offset 5m) * on (pod) group_left max by (pod) (b_info) > bool 1e3 and c unless d or time()',
      ),
    ).toEqual(['a_total', 'b_info', 'c', 'd']);
    expect(
      metricNamesIn('(min by (namespace, name) (x_seconds{namespace=~"$namespace"}) - time()) < 1209600'),
    ).toEqual(['x_seconds']);
    expect(metricNamesIn('sum(rate(q[5m:1m])) / ignoring(le) count_values("v", w)')).toEqual(['q', 'w']);
  });

  it('reads names from # TYPE lines (histograms with their series) and from samples', () => {
    const names = exportedNames('# HELP h x\n# TYPE h histogram\n# TYPE g gauge\ng{a="1"} 2\nplain 3\n');
    expect([...names].sort()).toEqual(['g', 'h', 'h_bucket', 'h_count', 'h_sum', 'plain']);
  });
});
