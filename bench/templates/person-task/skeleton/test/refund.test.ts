import { test } from 'node:test';
import assert from 'node:assert';
import { countRefunds } from '../src/refund';

test('refund store starts empty', () => {
  assert.strictEqual(countRefunds(), 0);
});
