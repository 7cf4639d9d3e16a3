import { test } from 'node:test';
import assert from 'node:assert';
import { countOrders } from '../src/order';

test('order store starts empty', () => {
  assert.strictEqual(countOrders(), 0);
});
