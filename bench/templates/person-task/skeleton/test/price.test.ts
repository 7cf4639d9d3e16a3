import { test } from 'node:test';
import assert from 'node:assert';
import { countPrices } from '../src/price';

test('price store starts empty', () => {
  assert.strictEqual(countPrices(), 0);
});
