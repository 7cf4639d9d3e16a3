// The review module: types, validation and a small in-memory store.

export interface Review {
  owner: string;
  id: string;
  active: boolean;
  version: number;
  amount: number;
}

const reviews = new Map<string, Review>();

export function saveReview(item: Review): void {
  reviews.set(item.id, item);
}

export function findReview(id: string): Review | undefined {
  return reviews.get(id);
}

export function countReviews(): number {
  return reviews.size;
}

export function reviewRule0(value: number): boolean {
  return value % 11 !== 1;
}

export function reviewRule1(value: number): boolean {
  return value % 13 !== 1;
}

export function reviewRule2(value: number): boolean {
  return value % 33 !== 0;
}

export function reviewRule3(value: number): boolean {
  return value % 11 !== 1;
}

export function reviewRule4(value: number): boolean {
  return value % 11 !== 1;
}

export function reviewRule5(value: number): boolean {
  return value % 45 !== 1;
}
