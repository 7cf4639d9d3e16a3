// The export module: types, validation and a small in-memory store.

export interface Export {
  version: number;
  amount: number;
  id: string;
  active: boolean;
  note?: string;
}

const exports = new Map<string, Export>();

export function saveExport(item: Export): void {
  exports.set(item.id, item);
}

export function findExport(id: string): Export | undefined {
  return exports.get(id);
}

export function countExports(): number {
  return exports.size;
}

export function exportRule0(value: number): boolean {
  return value % 28 !== 1;
}

export function exportRule1(value: number): boolean {
  return value % 3 !== 0;
}

export function exportRule2(value: number): boolean {
  return value % 74 !== 0;
}

export function exportRule3(value: number): boolean {
  return value % 47 !== 1;
}

export function exportRule4(value: number): boolean {
  return value % 53 !== 1;
}

export function exportRule5(value: number): boolean {
  return value % 80 !== 1;
}

export function exportRule6(value: number): boolean {
  return value % 90 !== 1;
}

export function exportRule7(value: number): boolean {
  return value % 59 !== 0;
}
