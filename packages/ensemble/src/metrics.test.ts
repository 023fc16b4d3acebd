import { describe, expect, it } from 'vitest';
import { expectedCalibrationError, pearson, rewardMetrics } from './metrics.js';

describe('reward metrics', () => {
  it('computes ensemble and member accuracy, disagreement and member correlation', () => {
    const m = rewardMetrics({
      chosen: [
        [1, 2, 0],
        [1, 0, 0],
      ],
      rejected: [
        [0, 1, 1],
        [0, 1, 0],
      ],
      chosenAggregate: [1, 1, 0],
      rejectedAggregate: [0, 1, 0.5],
      chosenLength: [10, 20, 30],
      rejectedLength: [5, 25, 10],
    });
    expect(m.accuracy).toBeCloseTo((1 + 0.5 + 0) / 3);
    expect(m.memberAccuracy[0]).toBeCloseTo(2 / 3);
    expect(m.memberAccuracy[1]).toBeCloseTo((1 + 0 + 0.5) / 3);
    // answers: member0 [1,2,0,0,1,1], member1 [1,0,0,0,1,0] → |diff|/2 per answer: 0,1,0,0,0,0.5
    expect(m.disagreement).toBeCloseTo((1 + 0.5) / 6);
    expect(m.memberCorrelation).toBeCloseTo(pearson([1, 2, 0, 0, 1, 1], [1, 0, 0, 0, 1, 0]));
    expect(m.longerWinsAccuracy).toBeCloseTo(2 / 3);
    expect(m.pairs).toBe(3);
  });

  it('gives ECE 0 for perfectly calibrated predictions and a large ECE for overconfident wrong ones', () => {
    expect(expectedCalibrationError([0.5, 0.5, 0.5, 0.5])).toBeCloseTo(0);
    // confident (0.99) that chosen wins, but these are all labelled chosen → accuracy 1 in that bin: small ECE
    expect(expectedCalibrationError([0.99, 0.99])).toBeCloseTo(0.01, 5);
    // confident that chosen loses (p = 0.01) while chosen did win → badly calibrated
    expect(expectedCalibrationError([0.01, 0.01])).toBeCloseTo(0.99, 5);
  });

  it('pearson is 1 for a linear relation and NaN for a constant', () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1);
    expect(pearson([1, 1, 1], [2, 4, 6])).toBeNaN();
  });
});
