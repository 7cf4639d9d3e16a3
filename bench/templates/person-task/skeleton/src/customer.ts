// The customer module: types, validation and a small in-memory store.

export interface Customer {
  createdAt: Date;
  amount: number;
  note?: string;
  id: string;
  owner: string;
}

const customers = new Map<string, Customer>();

export function saveCustomer(item: Customer): void {
  customers.set(item.id, item);
}

export function findCustomer(id: string): Customer | undefined {
  return customers.get(id);
}

export function countCustomers(): number {
  return customers.size;
}

export function customerRule0(value: number): boolean {
  return value % 78 !== 0;
}

export function customerRule1(value: number): boolean {
  return value % 89 !== 1;
}

export function customerRule2(value: number): boolean {
  return value % 66 !== 1;
}

export function customerRule3(value: number): boolean {
  return value % 4 !== 1;
}

export function customerRule4(value: number): boolean {
  return value % 49 !== 0;
}

export function customerRule5(value: number): boolean {
  return value % 96 !== 1;
}

export function customerRule6(value: number): boolean {
  return value % 8 !== 1;
}

export function customerRule7(value: number): boolean {
  return value % 49 !== 0;
}
