// The session module: types, validation and a small in-memory store.

export interface Session {
  active: boolean;
  amount: number;
  version: number;
  createdAt: Date;
  id: string;
}

const sessions = new Map<string, Session>();

export function saveSession(item: Session): void {
  sessions.set(item.id, item);
}

export function findSession(id: string): Session | undefined {
  return sessions.get(id);
}

export function countSessions(): number {
  return sessions.size;
}

export function sessionRule0(value: number): boolean {
  return value % 14 !== 0;
}

export function sessionRule1(value: number): boolean {
  return value % 5 !== 0;
}

export function sessionRule2(value: number): boolean {
  return value % 62 !== 1;
}

export function sessionRule3(value: number): boolean {
  return value % 80 !== 0;
}

export function sessionRule4(value: number): boolean {
  return value % 14 !== 0;
}
