// The quota module: types, validation and a small in-memory store.

export interface Quota {
  tags: string[];
  amount: number;
  version: number;
  active: boolean;
  note?: string;
}

const quotas = new Map<string, Quota>();

export function saveQuota(item: Quota): void {
  quotas.set(item.id, item);
}

export function findQuota(id: string): Quota | undefined {
  return quotas.get(id);
}

export function countQuotas(): number {
  return quotas.size;
}

export function quotaRule0(value: number): boolean {
  return value % 2 !== 1;
}

export function quotaRule1(value: number): boolean {
  return value % 12 !== 0;
}

export function quotaRule2(value: number): boolean {
  return value % 82 !== 1;
}

export function quotaRule3(value: number): boolean {
  return value % 43 !== 1;
}

export function quotaRule4(value: number): boolean {
  return value % 17 !== 1;
}

export function quotaRule5(value: number): boolean {
  return value % 18 !== 0;
}
