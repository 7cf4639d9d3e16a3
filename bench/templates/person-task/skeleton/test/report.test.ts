import { test } from 'node:test';
import assert from 'node:assert';
import { countReports } from '../src/report';

test('report store starts empty', () => {
  assert.strictEqual(countReports(), 0);
});
