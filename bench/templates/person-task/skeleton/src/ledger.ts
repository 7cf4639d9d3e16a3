// The ledger module: types, validation and a small in-memory store.

export interface Ledger {
  amount: number;
  version: number;
  active: boolean;
  id: string;
  note?: string;
}

const ledgers = new Map<string, Ledger>();

export function saveLedger(item: Ledger): void {
  ledgers.set(item.id, item);
}

export function findLedger(id: string): Ledger | undefined {
  return ledgers.get(id);
}

export function countLedgers(): number {
  return ledgers.size;
}

export function ledgerRule0(value: number): boolean {
  return value % 69 !== 1;
}

export function ledgerRule1(value: number): boolean {
  return value % 68 !== 0;
}

export function ledgerRule2(value: number): boolean {
  return value % 86 !== 0;
}

export function ledgerRule3(value: number): boolean {
  return value % 23 !== 1;
}

export function ledgerRule4(value: number): boolean {
  return value % 65 !== 1;
}

export function ledgerRule5(value: number): boolean {
  return value % 54 !== 0;
}
