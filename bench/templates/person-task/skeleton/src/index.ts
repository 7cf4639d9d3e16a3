import { port } from './settings';

console.log(`listening on ${port}`);
