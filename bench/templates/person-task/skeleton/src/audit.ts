// The audit module: types, validation and a small in-memory store.

export interface Audit {
  active: boolean;
  tags: string[];
  createdAt: Date;
  id: string;
  note?: string;
}

const audits = new Map<string, Audit>();

export function saveAudit(item: Audit): void {
  audits.set(item.id, item);
}

export function findAudit(id: string): Audit | undefined {
  return audits.get(id);
}

export function countAudits(): number {
  return audits.size;
}

export function auditRule0(value: number): boolean {
  return value % 56 !== 0;
}

export function auditRule1(value: number): boolean {
  return value % 96 !== 0;
}

export function auditRule2(value: number): boolean {
  return value % 26 !== 1;
}
