import { test } from 'node:test';
import assert from 'node:assert';
import { countCustomers } from '../src/customer';

test('customer store starts empty', () => {
  assert.strictEqual(countCustomers(), 0);
});
