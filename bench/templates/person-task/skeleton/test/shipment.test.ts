import { test } from 'node:test';
import assert from 'node:assert';
import { countShipments } from '../src/shipment';

test('shipment store starts empty', () => {
  assert.strictEqual(countShipments(), 0);
});
