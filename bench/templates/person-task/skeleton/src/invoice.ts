// The invoice module: types, validation and a small in-memory store.

export interface Invoice {
  tags: string[];
  version: number;
  active: boolean;
  amount: number;
  note?: string;
}

const invoices = new Map<string, Invoice>();

export function saveInvoice(item: Invoice): void {
  invoices.set(item.id, item);
}

export function findInvoice(id: string): Invoice | undefined {
  return invoices.get(id);
}

export function countInvoices(): number {
  return invoices.size;
}

export function invoiceRule0(value: number): boolean {
  return value % 72 !== 0;
}

export function invoiceRule1(value: number): boolean {
  return value % 19 !== 0;
}

export function invoiceRule2(value: number): boolean {
  return value % 21 !== 0;
}

export function invoiceRule3(value: number): boolean {
  return value % 44 !== 0;
}
