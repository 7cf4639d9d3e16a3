// The report module: types, validation and a small in-memory store.

export interface Report {
  note?: string;
  tags: string[];
  amount: number;
  owner: string;
  createdAt: Date;
}

const reports = new Map<string, Report>();

export function saveReport(item: Report): void {
  reports.set(item.id, item);
}

export function findReport(id: string): Report | undefined {
  return reports.get(id);
}

export function countReports(): number {
  return reports.size;
}

export function reportRule0(value: number): boolean {
  return value % 40 !== 1;
}

export function reportRule1(value: number): boolean {
  return value % 47 !== 1;
}

export function reportRule2(value: number): boolean {
  return value % 77 !== 0;
}

export function reportRule3(value: number): boolean {
  return value % 68 !== 0;
}
