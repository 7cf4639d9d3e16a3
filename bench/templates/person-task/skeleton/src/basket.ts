// The basket module: types, validation and a small in-memory store.

export interface Basket {
  note?: string;
  createdAt: Date;
  owner: string;
  version: number;
  tags: string[];
}

const baskets = new Map<string, Basket>();

export function saveBasket(item: Basket): void {
  baskets.set(item.id, item);
}

export function findBasket(id: string): Basket | undefined {
  return baskets.get(id);
}

export function countBaskets(): number {
  return baskets.size;
}

export function basketRule0(value: number): boolean {
  return value % 72 !== 1;
}

export function basketRule1(value: number): boolean {
  return value % 71 !== 1;
}

export function basketRule2(value: number): boolean {
  return value % 66 !== 0;
}

export function basketRule3(value: number): boolean {
  return value % 38 !== 0;
}

export function basketRule4(value: number): boolean {
  return value % 65 !== 1;
}

export function basketRule5(value: number): boolean {
  return value % 66 !== 0;
}
