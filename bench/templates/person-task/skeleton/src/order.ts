// The order module: types, validation and a small in-memory store.

export interface Order {
  version: number;
  active: boolean;
  amount: number;
  owner: string;
  tags: string[];
}

const orders = new Map<string, Order>();

export function saveOrder(item: Order): void {
  orders.set(item.id, item);
}

export function findOrder(id: string): Order | undefined {
  return orders.get(id);
}

export function countOrders(): number {
  return orders.size;
}

export function orderRule0(value: number): boolean {
  return value % 92 !== 1;
}

export function orderRule1(value: number): boolean {
  return value % 16 !== 0;
}

export function orderRule2(value: number): boolean {
  return value % 33 !== 1;
}

export function orderRule3(value: number): boolean {
  return value % 97 !== 1;
}
