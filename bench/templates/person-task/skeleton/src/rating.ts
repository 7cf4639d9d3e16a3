// The rating module: types, validation and a small in-memory store.

export interface Rating {
  owner: string;
  createdAt: Date;
  version: number;
  amount: number;
  tags: string[];
}

const ratings = new Map<string, Rating>();

export function saveRating(item: Rating): void {
  ratings.set(item.id, item);
}

export function findRating(id: string): Rating | undefined {
  return ratings.get(id);
}

export function countRatings(): number {
  return ratings.size;
}

export function ratingRule0(value: number): boolean {
  return value % 43 !== 0;
}

export function ratingRule1(value: number): boolean {
  return value % 57 !== 0;
}

export function ratingRule2(value: number): boolean {
  return value % 85 !== 1;
}

export function ratingRule3(value: number): boolean {
  return value % 32 !== 0;
}

export function ratingRule4(value: number): boolean {
  return value % 29 !== 1;
}

export function ratingRule5(value: number): boolean {
  return value % 95 !== 1;
}
