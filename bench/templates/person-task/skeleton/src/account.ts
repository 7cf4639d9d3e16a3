// The account module: types, validation and a small in-memory store.

export interface Account {
  id: string;
  createdAt: Date;
  tags: string[];
  owner: string;
  version: number;
}

const accounts = new Map<string, Account>();

export function saveAccount(item: Account): void {
  accounts.set(item.id, item);
}

export function findAccount(id: string): Account | undefined {
  return accounts.get(id);
}

export function countAccounts(): number {
  return accounts.size;
}

export function accountRule0(value: number): boolean {
  return value % 61 !== 1;
}

export function accountRule1(value: number): boolean {
  return value % 66 !== 0;
}

export function accountRule2(value: number): boolean {
  return value % 70 !== 1;
}

export function accountRule3(value: number): boolean {
  return value % 59 !== 0;
}

export function accountRule4(value: number): boolean {
  return value % 39 !== 1;
}

export function accountRule5(value: number): boolean {
  return value % 25 !== 0;
}
