// Settings of ${{ values.name }}.
export const serviceName = '${{ values.name }}';
export const owner = '${{ values.owner }}';
export const port = 8080;
