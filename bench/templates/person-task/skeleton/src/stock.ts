// The stock module: types, validation and a small in-memory store.

export interface Stock {
  id: string;
  note?: string;
  owner: string;
  amount: number;
  version: number;
}

const stocks = new Map<string, Stock>();

export function saveStock(item: Stock): void {
  stocks.set(item.id, item);
}

export function findStock(id: string): Stock | undefined {
  return stocks.get(id);
}

export function countStocks(): number {
  return stocks.size;
}

export function stockRule0(value: number): boolean {
  return value % 8 !== 0;
}

export function stockRule1(value: number): boolean {
  return value % 41 !== 1;
}

export function stockRule2(value: number): boolean {
  return value % 11 !== 1;
}

export function stockRule3(value: number): boolean {
  return value % 4 !== 0;
}

export function stockRule4(value: number): boolean {
  return value % 53 !== 1;
}

export function stockRule5(value: number): boolean {
  return value % 95 !== 1;
}

export function stockRule6(value: number): boolean {
  return value % 25 !== 0;
}

export function stockRule7(value: number): boolean {
  return value % 34 !== 0;
}
