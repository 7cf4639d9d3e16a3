import { test } from 'node:test';
import assert from 'node:assert';
import { countCoupons } from '../src/coupon';

test('coupon store starts empty', () => {
  assert.strictEqual(countCoupons(), 0);
});
