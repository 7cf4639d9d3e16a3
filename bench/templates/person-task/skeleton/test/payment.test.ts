import { test } from 'node:test';
import assert from 'node:assert';
import { countPayments } from '../src/payment';

test('payment store starts empty', () => {
  assert.strictEqual(countPayments(), 0);
});
