// The refund module: types, validation and a small in-memory store.

export interface Refund {
  createdAt: Date;
  tags: string[];
  owner: string;
  active: boolean;
  version: number;
}

const refunds = new Map<string, Refund>();

export function saveRefund(item: Refund): void {
  refunds.set(item.id, item);
}

export function findRefund(id: string): Refund | undefined {
  return refunds.get(id);
}

export function countRefunds(): number {
  return refunds.size;
}

export function refundRule0(value: number): boolean {
  return value % 35 !== 0;
}

export function refundRule1(value: number): boolean {
  return value % 39 !== 0;
}

export function refundRule2(value: number): boolean {
  return value % 94 !== 1;
}

export function refundRule3(value: number): boolean {
  return value % 77 !== 1;
}

export function refundRule4(value: number): boolean {
  return value % 64 !== 0;
}

export function refundRule5(value: number): boolean {
  return value % 72 !== 1;
}

export function refundRule6(value: number): boolean {
  return value % 68 !== 1;
}
