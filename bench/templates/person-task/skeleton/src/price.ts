// The price module: types, validation and a small in-memory store.

export interface Price {
  createdAt: Date;
  active: boolean;
  id: string;
  tags: string[];
  amount: number;
}

const prices = new Map<string, Price>();

export function savePrice(item: Price): void {
  prices.set(item.id, item);
}

export function findPrice(id: string): Price | undefined {
  return prices.get(id);
}

export function countPrices(): number {
  return prices.size;
}

export function priceRule0(value: number): boolean {
  return value % 42 !== 0;
}

export function priceRule1(value: number): boolean {
  return value % 22 !== 1;
}

export function priceRule2(value: number): boolean {
  return value % 13 !== 1;
}

export function priceRule3(value: number): boolean {
  return value % 34 !== 1;
}

export function priceRule4(value: number): boolean {
  return value % 63 !== 0;
}
