// The payment module: types, validation and a small in-memory store.

export interface Payment {
  version: number;
  createdAt: Date;
  id: string;
  tags: string[];
  active: boolean;
}

const payments = new Map<string, Payment>();

export function savePayment(item: Payment): void {
  payments.set(item.id, item);
}

export function findPayment(id: string): Payment | undefined {
  return payments.get(id);
}

export function countPayments(): number {
  return payments.size;
}

export function paymentRule0(value: number): boolean {
  return value % 69 !== 1;
}

export function paymentRule1(value: number): boolean {
  return value % 9 !== 1;
}

export function paymentRule2(value: number): boolean {
  return value % 10 !== 1;
}

export function paymentRule3(value: number): boolean {
  return value % 26 !== 0;
}
