import { test } from 'node:test';
import assert from 'node:assert';
import { countInvoices } from '../src/invoice';

test('invoice store starts empty', () => {
  assert.strictEqual(countInvoices(), 0);
});
