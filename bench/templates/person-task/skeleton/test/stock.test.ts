import { test } from 'node:test';
import assert from 'node:assert';
import { countStocks } from '../src/stock';

test('stock store starts empty', () => {
  assert.strictEqual(countStocks(), 0);
});
